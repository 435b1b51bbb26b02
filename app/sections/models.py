"""The models section: each checkpoint's configuration, data, classes and recorded metrics."""

from __future__ import annotations

import streamlit as st

from app import catalog, describe
from app.values import Loaded


def model_details(models: list[Loaded]) -> None:
    """Inside the closed-by-default Models section, while it is open."""
    if not models:
        st.write("No model loaded.")
        return
    for column, model in zip(st.columns(len(models)), models, strict=True):
        md = model.checkpoint.metadata
        with column:
            st.markdown(f"**{model.role}: {model.name}**  \n`{model.checkpoint.source}`")
            st.markdown(
                f"Trained on **{catalog.dataset_label(md.dataset_id)}**; seed {md.seed}, "
                f"{md.training_seconds:.0f} s, {md.created}, larnn {md.code_version}."
            )
            st.markdown(
                "Channels: "
                + ", ".join(
                    f"`{n}` ({u})" for n, u in zip(md.channel_names, md.channel_units, strict=True)
                )
            )
            st.markdown("Classes: " + ", ".join(f"`{c}`" for c in md.class_names))
            readout = describe.READOUT_WORDS[model.checkpoint.config.readout]
            st.markdown(f"Reads out: **{readout}**.")
            st.markdown(f"Reads: {describe.encoder_inputs(model.checkpoint.config.asinh_scale)}.")
            protocol = describe.training_protocol(md.train_config)
            if protocol:
                st.markdown(protocol)
            st.dataframe(catalog.metrics_table(md.metrics), hide_index=True)
            st.caption("Full configuration (click to unfold):")
            st.json(model.checkpoint.config.to_dict(), expanded=False)
