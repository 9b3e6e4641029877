//! The crawler user agents of the `crawler-user-agents` corpus (npm, MIT; its `instances`
//! only, in `tests/data/`) are recognised as bots, but for the apps people browse with.

use heartbeat_ingest::enrich::user_agent::UserAgents;

const CORPUS: &str = include_str!("data/crawler-user-agents.txt");

/// The corpus lists these because they fetch pages in the background too, but they are the
/// in-app browsers (Instagram, Facebook) and desktop apps (Electron editors, Fluid) people
/// read pages with; isbot and Plausible count them as visitors, and so does Heartbeat.
const PEOPLE: [&str; 4] = ["Instagram ", "MetaIAB", "Electron/", "Fluid/"];

#[test]
fn real_crawlers_are_bots() {
    let agents = UserAgents::shared();
    let all: Vec<&str> = CORPUS.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(all.len() > 2000, "corpus has {} user agents", all.len());
    let (people, crawlers): (Vec<&str>, Vec<&str>) = all
        .iter()
        .partition(|ua| PEOPLE.iter().any(|token| ua.contains(token)));
    let missed: Vec<&&str> = crawlers
        .iter()
        .filter(|ua| agents.parse(ua).bot.is_none())
        .collect();
    assert!(
        missed.is_empty(),
        "{} of {} crawlers missed: {missed:#?}",
        missed.len(),
        crawlers.len()
    );
    assert!(people.len() < 10, "{people:#?}");
    // Electron also carries monitors (PingdomTMS), so only the in-app browsers are sure to
    // be people.
    for ua in people
        .iter()
        .filter(|ua| ua.contains("Instagram ") || ua.contains("MetaIAB"))
    {
        assert_eq!(agents.parse(ua).bot, None, "{ua}");
    }
}
