"""The Python API in a notebook: run a search, read it back as pandas, plot its front.

Run it as it is (`python docs/examples/python_api.py`, about a minute on a laptop CPU); it writes
`api-runs/` and `front.png` in the working directory.
"""

import gatesearch

space = gatesearch.parse_space_file("""
name: api-demo
objective: moe_digits
search: {searcher: tpe, num_samples: 4, max_concurrent: 2, seed: 0}
fixed: {epochs: 2, expert_hidden: 16, expert_out: 8}
params:
  gate: {type: categorical, choices: [topk, hash, softmax]}
  n_experts: {type: int, low: 2, high: 8}
  k: {type: int, low: 1, high: n_experts}     # never more experts per token than there are
  lr: {type: float, low: 1.0e-3, high: 3.0e-2, log: true}
""", "api-demo.yaml")

result = gatesearch.run_search(space, output_dir="api-runs", overrides={"num_samples": 4})
print(f"{len(result.trials)} finished, {result.failed} failed, hypervolume {result.hypervolume:,.1f}")

again = gatesearch.load_search("api-runs")          # later, or in another notebook: the same search
print("front:")
print(again.front_df[["trial", "gate", "n_experts", "accuracy", "macs_per_sample"]].to_string(index=False))
print(again.trials_df.groupby("status").size())
fig = again.plot()                                  # in Jupyter, the figure shows inline
fig.savefig("front.png")
