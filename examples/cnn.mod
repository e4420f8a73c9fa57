# cnn.mod: a small convolutional network for 32 x 32 colour images (CIFAR-10).
#
#     modc emit examples/cnn.mod --emit ir
#     modc emit examples/cnn.mod --set width=64      # twice as many channels
#
# `Conv2D(dout, din, k)` is a k x k convolution from din channels to dout channels; its
# weight has shape [dout, din, k, k]. Its norm is k^2 times the largest RMS -> RMS norm
# of its k x k slices W[:, :, i, j] (norm `conv_rms_to_rms`).
#
# Feature sizes count channels: modc checks that channels fit from layer to layer, and
# leaves the image's height and width to the runtime. `AvgPool` averages over all
# positions and keeps the channels, so the classifier sees 2 * width features.

# A def is a named, reusable formula; it can take numbers (and modules) as arguments.
# Each call makes new weights. Because composition reads right to left, `ReLU @ Conv2D`
# is a convolution followed by a ReLU.
def conv(dout, din, k) = ReLU @ Conv2D(dout, din, k)

network cnn(channels = 3, width = 32, classes = 10) =
    (Linear(classes, 2 * width) as classifier)     # runs last
  @ AvgPool                                        # [2 * width channels, h, w] -> 2 * width
  @ conv(2 * width, width, 3)
  @ conv(width, channels, 5)                       # runs first: the RGB image comes in here

# Paths of the weights. A def labels what it makes with its own name, and an unnamed
# atom that is the only weight under a label takes the label's path. So the two
# convolutions are `conv[0]` (the input side, 5 x 5) and `conv[1]` (3 x 3): siblings
# with the same name are numbered in the order they run. `as classifier` names the
# Linear; without it, it would be `linear`.
#
# Masses: three weights of mass 1, so each gets a third of the learning. To give the
# classifier more, write `Linear(classes, 2 * width, mass = 2)`, or wrap the
# convolutions in `tare(..., m)` to give them a total mass m.
