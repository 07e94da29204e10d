"""Explanations for human overseers: exact attributions on the submitted artifact."""
