"""Stage 5: the BentoML prediction service over the registered champions (service), the model
set it answers with (models) and its strict input (schemas). Imports `core`, `features` and
`training` (the pyfunc models it loads)."""
