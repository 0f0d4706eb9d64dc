"""Building blocks: latent modules, quantizers and networks (nn.Modules with no objective and no registry)."""
