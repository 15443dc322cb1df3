"""Campaigns: did a segment's strategy work? A seeded, stratified holdout per segment before
the campaign (`plan`), treatment against control per segment after it (`evaluate`), the measured
effect fed back to the scheme (`effects`), and whether segmenting pays at all (`config`)."""
