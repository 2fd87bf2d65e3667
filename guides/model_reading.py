"""The base of guide families that read the model's own networks instead of (or beside) their own."""
import torch
from torch import nn


class ModelReadingGuide(nn.Module):
    """A guide that reads the model's denoiser and prior. ``DiffusionProgram`` builds the guide
    before the denoiser (so that a seed gives every model the same initial weights) and then hands
    both over with :meth:`read_from`. They are held as references, not submodules: their
    parameters belong to the model. Models without blocks only."""

    name = ""              # the family's registry name, for messages
    reads_denoiser = True

    def __init__(self, net_cfg):
        super().__init__()
        if net_cfg.block_size:
            raise ValueError(f"guide {self.name!r} serves models without blocks")
        self.mask_id = net_cfg.mask_id
        self._model = None

    def read_from(self, denoiser, prior):
        self._model = (denoiser, prior)

    def model_parts(self):
        """``(denoiser, prior)`` of the model this guide reads."""
        if self._model is None:
            raise RuntimeError(f"guide {self.name!r} has no denoiser to read (read_from)")
        return self._model

    def masked_input(self, tokens, masked):
        """``xt``: ``tokens`` with the ``masked`` positions masked again."""
        return torch.where(masked, torch.full_like(tokens, self.mask_id), tokens)
