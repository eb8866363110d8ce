"""Models: a small zoo after the classics, user factories ("package.module:factory"), and
torchvision/timm architectures ("torchvision:<builder>", "timm:<name>") with local pretrained
weights and an optionally frozen backbone (``vision``, ``weights``, ``freeze``; imported only
when named; timm is an optional extra). The zoo's mobilenet_v2 and squeezenet are built by
torchvision, adapted to small images (``torchvision_zoo``).

``build_model(spec, input_shape, num_classes)`` returns an ``nn.Module`` mapping a batch
``(N, *input_shape)`` to logits ``(N, num_classes)``; ``MODEL_NAMES`` lists the zoo.
"""

from batchlab.models.zoo import MODEL_NAMES, build_model

__all__ = ["MODEL_NAMES", "build_model"]
