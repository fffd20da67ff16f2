"""Quality control of a session: statistics gathered while frames are decoded, a motion
estimate, and one self-contained HTML page a person scrolls through (no Dagster here).

`stats` is fed by the decoder threads; `motion` registers the frames it kept; `model` holds
what the page and the asset metadata show; `page` draws and writes the page.
"""
