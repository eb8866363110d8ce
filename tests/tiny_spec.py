"""The smallest spec the command line trains (a synthetic set, a 4-unit MLP, 2 steps, no
checkpoints): for the tests of its faults and Ctrl-C, where what is trained does not matter.
No ``name``: the experiment is named after the file unless a test prepends one."""

TINY = """
[data]
name = "synthetic"
shape = [6]
classes = 3
size = 60
[model]
name = "mlp"
hidden = [4]
[train]
steps = 2
threads = 1
checkpoint = false
"""
