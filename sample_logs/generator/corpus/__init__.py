"""Scenario-sampling corpus generator: sampled recipes (scenarios), one training loop per family (train,
caffe_train), the log formats (emit) and the check of each label against the recorded outcome (outcome)."""
