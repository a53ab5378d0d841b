// Package train holds the shared training loop, its solvers, schedules and checkpoints.
//
// The solvers (SGD, Adam, AdamW) follow torch.optim of PyTorch 1.13 exactly and update the
// model's parameter tensors in place from gradient tensors read after the TapeMachine has
// run. Their state (momentum buffers, Adam moments and step counts) is exported through
// OptimizerState so that a checkpoint can resume bit-identically.
//
// The learning-rate schedules are pure functions of a 0-based step or epoch index
// (Schedule.LR), as nanoGPT's get_lr, and reproduce the values of
// torch.optim.lr_scheduler; ReduceLROnPlateau is the one stateful schedule, driven by a
// validation metric. The tests compare both against fixtures written by PyTorch
// (testdata/gen/optim.py).
package train
