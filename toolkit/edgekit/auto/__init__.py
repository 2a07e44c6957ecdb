"""`edgekit compress --recipe auto`: a small grid compressed and measured side by side on the target, the
latency/NME front, and the most accurate artifact under a latency budget."""
