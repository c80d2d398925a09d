"""CCoL network components, one module per component of the paper."""

from ccol_policy.model.alignment import AlignmentAttention, SemanticPhysicalAlignment
from ccol_policy.model.ccol import CCoL, CCoLOutput, TokenLayout
from ccol_policy.model.latent_ode import LatentODE
from ccol_policy.model.proprio_cvae import ProprioCVAE
from ccol_policy.model.text import InstructionEncoder
from ccol_policy.model.vision import VisionEncoder

__all__ = [
    "AlignmentAttention",
    "CCoL",
    "CCoLOutput",
    "InstructionEncoder",
    "LatentODE",
    "ProprioCVAE",
    "SemanticPhysicalAlignment",
    "TokenLayout",
    "VisionEncoder",
]
