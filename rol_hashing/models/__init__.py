"""The paper's networks: VGG16 (C, D), PSP segmentation, the ROL, the SSDH head, and
their losses (SSDH's terms, the segmentation cross-entropy) and segmentation metrics.

Only ``keras.ops`` and ``keras.layers`` are used here, so the models run under
any Keras backend (TensorFlow by default, JAX for the GPU checks).
"""

from rol_hashing.models.describe import LayerRow, describe_model, format_table
from rol_hashing.models.hashing import ROL_TAPS, build_hashing_model, rol_feature_size
from rol_hashing.models.losses import (
    MaskedSparseCrossEntropy,
    SSDHCodeLoss,
    classification_loss,
    ssdh_e1,
    ssdh_e2,
    ssdh_losses,
)
from rol_hashing.models.metrics import PixelAccuracy, mean_iou_metric
from rol_hashing.models.psp import PSPBranch, build_segmentation_model, psp_geometry, psp_module
from rol_hashing.models.rol import (
    MASK_FORMS,
    ReliabilityMask,
    ReliabilityObjectLayer,
    mask_form,
    reliability_mask,
)
from rol_hashing.models.vgg import build_vgg16, vgg16_features, vgg16_top
from rol_hashing.models.weights import (
    IMAGENET_NOTOP,
    IMAGENET_TOP,
    WeightLoadReport,
    copy_weights_by_name,
    default_weights_path,
    load_vgg16_imagenet_weights,
    save_vgg16_weights_h5,
)

__all__ = [
    "IMAGENET_NOTOP",
    "IMAGENET_TOP",
    "ROL_TAPS",
    "LayerRow",
    "MASK_FORMS",
    "MaskedSparseCrossEntropy",
    "PSPBranch",
    "PixelAccuracy",
    "ReliabilityMask",
    "ReliabilityObjectLayer",
    "SSDHCodeLoss",
    "WeightLoadReport",
    "build_hashing_model",
    "build_segmentation_model",
    "build_vgg16",
    "classification_loss",
    "copy_weights_by_name",
    "default_weights_path",
    "describe_model",
    "format_table",
    "load_vgg16_imagenet_weights",
    "mask_form",
    "mean_iou_metric",
    "psp_geometry",
    "psp_module",
    "reliability_mask",
    "rol_feature_size",
    "save_vgg16_weights_h5",
    "ssdh_e1",
    "ssdh_e2",
    "ssdh_losses",
    "vgg16_features",
    "vgg16_top",
]
