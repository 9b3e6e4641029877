// The overview chart's annotations: those of the chart's range (notes people wrote and fired
// alerts), and the small form that adds a note at a time on the site's clock.

import { useEffect, useState } from "preact/hooks";
import { createAnnotation, listAnnotations, type Annotation } from "../api";
import { addDays, wallInputValue, wallTime, wallToInstant } from "../timezone";
import { Field, formErrors } from "./product";

/**
 * The dates to ask for around the chart's labels (the site's dates): a day more on each side,
 * as the server's dates and the site's clock may differ by a zone's offset; a month bucket
 * reaches to the end of its month. The chart leaves out what falls outside its buckets.
 */
function chartDates(labels: string[], grain: string): { from: string; to: string } {
  const last = labels[labels.length - 1];
  return { from: addDays(labels[0], -1), to: addDays(last, grain === "time:month" ? 32 : 1) };
}

/**
 * The site's annotations for a chart over `labels` (null: no chart, nothing asked), asked
 * again when `reload` changes; never another site's.
 */
export function useAnnotations(token: string, site: string, labels: string[] | null, grain: string, reload: unknown): Annotation[] {
  const [shown, setShown] = useState<{ site: string; annotations: Annotation[] }>({ site: "", annotations: [] });
  const dates = labels && labels.length > 0 ? chartDates(labels, grain) : null;
  const key = JSON.stringify([site, dates, reload]);
  useEffect(() => {
    if (!site || !dates) return;
    let cancelled = false;
    listAnnotations(token, site, dates)
      .then((annotations) => !cancelled && setShown({ site, annotations }))
      // The chart without its annotations rather than an error over it.
      .catch(() => !cancelled && setShown({ site, annotations: [] }));
    return () => {
      cancelled = true;
    };
  }, [key]);
  return shown.site === site ? shown.annotations : [];
}

/**
 * "Add annotation": a note at a date and time on the site's clock (now, to begin with). A
 * button and, once opened, a form below it: both go into the chart's header row.
 */
export function AnnotationControl({ token, site, timezone, onAdded }: { token: string; site: string; timezone: string; onAdded: () => void }) {
  const [open, setOpen] = useState(false);
  const [at, setAt] = useState("");
  const [text, setText] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  const { byField, general } = formErrors(error, { at: ["at"], text: ["text"] });
  const value = (e: Event) => (e.target as HTMLInputElement).value;
  const toggle = () => {
    if (!open) {
      setAt(wallInputValue(wallTime(Date.now(), timezone)));
      setText("");
      setError(null);
    }
    setOpen(!open);
  };
  return (
    <>
      <button class="ghost" data-testid="annotation-add" aria-expanded={open} onClick={toggle}>
        {open ? "Cancel" : "Add annotation"}
      </button>
      {open && (
        <form
          class="annotation-form form-row"
          data-testid="annotation-form"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            const instant = wallToInstant(at, timezone);
            setError(null);
            setSaving(true);
            // Sent as typed when it is no date and time, for the server to say what is wrong.
            createAnnotation(token, site, { at: Number.isNaN(instant) ? at : new Date(instant).toISOString(), text: text.trim() })
              .then(() => {
                setOpen(false);
                onAdded();
              })
              .catch(setError)
              .finally(() => setSaving(false));
          }}
        >
          <Field id="annotation-at" label={`Annotation time (${timezone})`} error={byField.at}>
            {(input) => <input {...input} type="datetime-local" value={at} onInput={(e) => setAt(value(e))} />}
          </Field>
          <Field id="annotation-text" label="Annotation text" error={byField.text} class="grow">
            {(input) => <input {...input} value={text} placeholder="Launched the new pricing page" onInput={(e) => setText(value(e))} />}
          </Field>
          <button type="submit" data-testid="annotation-save" disabled={saving}>
            Save annotation
          </button>
          {general && <p class="error">{general}</p>}
        </form>
      )}
    </>
  );
}
