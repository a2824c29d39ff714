"""The browser app (``clusterlens app``): a Gradio "microscope" over allocation and regions.

Like ``cli/``, it imports everything and nothing imports it. Gradio is an optional
dependency (``pip install "clusterlens[app]"``); :mod:`clusterlens.app.handlers` holds
the work as plain functions and needs no Gradio.
"""

from __future__ import annotations
