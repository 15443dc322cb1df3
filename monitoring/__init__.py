"""Stage 6: drift (Evidently) and segment health against the champions' reference (reference,
drift, health, measure), re-evaluation of the schemes (reevaluate), the summary and the
analysts' report, and one monitoring run as a function (pipeline). Imports every stage below
it, serving's model set included."""
