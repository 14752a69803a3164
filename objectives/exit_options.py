"""The categorical options of the early-exit objectives (torch-free: the schema needs them)."""

#: confidence measures of the threshold baseline
CONFIDENCES = ("max_softmax", "entropy", "margin")
#: JEI-DNN classifier losses: ``weighted`` (ρ detached) or ``plain`` (the released code)
IM_LOSSES = ("weighted", "plain")
