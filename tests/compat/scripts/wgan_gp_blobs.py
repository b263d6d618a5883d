"""WGAN-GP on small synthetic images: a convolutional critic trained with a gradient penalty
(autograd.grad(create_graph=True) through its convolutions), a ConvTranspose2d generator, Adam(0.5, 0.9)."""

import json

import numpy as np
import torch
import torch.nn as nn

SIZE, LATENT, BATCH = 8, 8, 32


def real_images(n, rng):
    """A bright 3x3 square at a random place on a dark 8x8 canvas."""
    images = np.full((n, 1, SIZE, SIZE), -1.0, dtype=np.float32)
    rows, cols = rng.integers(0, SIZE - 2, size=n), rng.integers(0, SIZE - 2, size=n)
    for k, (r, c) in enumerate(zip(rows, cols, strict=True)):
        images[k, 0, r:r + 3, c:c + 3] = 1.0
    return torch.from_numpy(images)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.project = nn.Linear(LATENT, 32 * 2 * 2)
        self.body = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 4, stride=2, padding=1), nn.Tanh())

    def forward(self, z):
        return self.body(self.project(z).view(-1, 32, 2, 2))


class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(32 * 2 * 2, 1))

    def forward(self, x):
        return self.body(x).squeeze(-1)


def gradient_penalty(critic, real, fake):
    alpha = torch.rand(real.size(0), 1, 1, 1)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grads,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    norms = grads.flatten(1).norm(2, dim=1)
    return ((norms - 1) ** 2).mean(), norms


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    generator, critic = Generator(), Critic()
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.9))
    opt_c = torch.optim.Adam(critic.parameters(), lr=2e-3, betas=(0.5, 0.9))
    for _ in range(120):
        for _ in range(2):
            real = real_images(BATCH, rng)
            fake = generator(torch.randn(BATCH, LATENT)).detach()
            penalty, norms = gradient_penalty(critic, real, fake)
            loss_c = critic(fake).mean() - critic(real).mean() + 10.0 * penalty
            opt_c.zero_grad()
            loss_c.backward()
            opt_c.step()
        loss_g = -critic(generator(torch.randn(BATCH, LATENT))).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    with torch.no_grad():
        fake = generator(torch.randn(512, LATENT))
        real = real_images(512, np.random.default_rng(1))
        bright_error = abs((fake > 0).float().mean().item() - 9 / 64)  # real images: 9 of 64 pixels are bright
        pixel_gap = (fake.mean(0) - real.mean(0)).abs().mean().item()
    print(json.dumps({"bright_fraction_error": bright_error, "mean_image_gap": pixel_gap,
                      "critic_grad_norm_error": (norms - 1).abs().mean().item()}))


if __name__ == "__main__":
    main()
