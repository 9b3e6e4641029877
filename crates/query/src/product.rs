//! Running product analytics: each kind's request (`retention.rs`, `paths.rs`) compiled to
//! its one statement (`compile/retention.rs`, `compile/paths.rs`) in the runner's dialect,
//! run, and its rows assembled into the answer. (Journeys, one person's few events, write
//! their own small statements in `journey.rs`, as single-event listing does.)

use crate::compile::paths::paths_sql;
use crate::compile::retention::retention_sql;
use crate::paths::{self as path_analysis, PathsAnswer, PathsQuery};
use crate::retention::{self as cohort_analysis, RetentionAnswer, RetentionQuery};
use crate::sql::{RunError, SqlRunner};

/// The retention matrix of `query`.
pub async fn retention(
    query: &RetentionQuery,
    runner: &dyn SqlRunner,
) -> Result<RetentionAnswer, RunError> {
    let rows = runner
        .run(retention_sql(query, runner.dialect().sql()))
        .await?;
    Ok(cohort_analysis::assemble(query, rows))
}

/// The paths of `query`: nodes, edges and full paths.
pub async fn paths(query: &PathsQuery, runner: &dyn SqlRunner) -> Result<PathsAnswer, RunError> {
    let rows = runner.run(paths_sql(query, runner.dialect().sql())).await?;
    Ok(path_analysis::assemble(query, rows))
}
