"""The explorer's result sections, one module per section: Streamlit widgets and plots only.

`data` (the data shown, or why there is none, and whether each model fits it), `intro` (the
recorded accuracies, a probe's task in words), `predictions`
(the summary row and the probabilities), `attention` (heatmap, timeline, head grid, overview),
`faithfulness` (memory edits, attribution, erasure test, head importance), `sweep`, `export`
and `models`. What they show comes from pure modules under `app/`, cached by `app.resources`.
"""
