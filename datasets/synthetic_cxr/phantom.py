"""Phantom chest radiographs with known pneumonia masks, in pure numpy.

A phantom is drawn in normalized coordinates (x, y in [-1, 1], y pointing down like image
rows), so one anatomy renders at any size. Each seed drives three independent random
streams: anatomy (body, lungs, heart, diaphragm, ribs), acquisition (shift, scale,
exposure, blur, noise) and lesions. Anatomy therefore does not depend on the label, and
`lung_fields(seed)` reproduces the lung mask of `make_phantom(seed, ...)`.

Images are bit-identical for a seed with a given numpy build (numpy's PCG64 streams are
stable across platforms; float32 rounding in the FFT could differ in the last bit on
another build, which moves a pixel by at most one grey level, rarely).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Tissue brightness before the per-image exposure transform, on a 0..1 scale.
BACKGROUND = 0.04
SOFT_TISSUE = 0.56
LUNG_DARKENING = 0.36
MEDIASTINUM_BOOST = 0.10
SPINE_BOOST = 0.12
RIB_BOOST = 0.09
# Lesion peak brightness and size (gaussian sigma, normalized units) are drawn from these;
# calibrated with check_learnability.py (a small CNN must learn them, mean brightness not).
LESION_AMPLITUDE = (0.3, 0.6)
LESION_SIGMA = (0.09, 0.17)
LESION_PUFF_PX = 2.0  # size of the mottling at 128 px
LESION_MOTTLE = 0.6  # contrast of the mottling, relative to the mean
# Lesion pixels: where a lesion reaches this fraction of its own peak (inside the lungs).
MASK_FRACTION = 0.35


@dataclass(frozen=True)
class Anatomy:
    """Geometry of one phantom in normalized coordinates (image left = patient right)."""

    body_radii: tuple[float, float]
    lung_centers: tuple[tuple[float, float], tuple[float, float]]  # (x, y) per side
    lung_radii: tuple[tuple[float, float], tuple[float, float]]
    dome_tops: tuple[float, float]  # y of each hemidiaphragm's apex
    dome_curvature: float
    heart_center: tuple[float, float]
    heart_radii: tuple[float, float]
    mediastinum_half_width: float
    first_rib: float  # y where the highest posterior rib leaves the spine
    rib_gap: float
    rib_count: int
    rib_curvature: float  # how steeply ribs curve down laterally
    texture_seed: int  # lung vessel markings


@dataclass(frozen=True)
class Acquisition:
    """Per-image variation of positioning and exposure."""

    shift_px: tuple[float, float]
    scale: float
    gamma: float
    contrast: float
    brightness: float
    blur_px: float
    noise_std: float
    noise_seed: int


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent anatomy / acquisition / lesion generators for one seed."""
    children = np.random.SeedSequence(seed).spawn(3)
    return tuple(np.random.default_rng(child) for child in children)  # type: ignore[return-value]


def sample_anatomy(rng: np.random.Generator) -> Anatomy:
    """Random but plausible geometry (draw order is part of the dataset: keep it)."""
    lung_y = rng.uniform(-0.14, -0.06)
    lung_ry = rng.uniform(0.48, 0.56)
    # The right hemidiaphragm (image left) usually sits a little higher than the left.
    dome_right = lung_y + lung_ry * rng.uniform(0.45, 0.60)
    dome_left = dome_right + rng.uniform(0.0, 0.08)
    return Anatomy(
        body_radii=(rng.uniform(0.80, 0.90), rng.uniform(1.00, 1.10)),
        lung_centers=(
            (-rng.uniform(0.34, 0.40), lung_y + rng.uniform(-0.02, 0.02)),
            (rng.uniform(0.34, 0.40), lung_y + rng.uniform(-0.02, 0.02)),
        ),
        lung_radii=(
            (rng.uniform(0.22, 0.27), lung_ry),
            (rng.uniform(0.22, 0.27), lung_ry + rng.uniform(-0.03, 0.03)),
        ),
        dome_tops=(dome_right, dome_left),
        dome_curvature=rng.uniform(1.5, 2.5),
        heart_center=(rng.uniform(0.08, 0.16), rng.uniform(0.22, 0.32)),
        heart_radii=(rng.uniform(0.20, 0.26), rng.uniform(0.16, 0.21)),
        mediastinum_half_width=rng.uniform(0.11, 0.15),
        first_rib=rng.uniform(-0.78, -0.70),
        rib_gap=rng.uniform(0.13, 0.15),
        rib_count=9,
        rib_curvature=rng.uniform(0.7, 0.9),
        texture_seed=int(rng.integers(2**31)),
    )


def sample_acquisition(rng: np.random.Generator) -> Acquisition:
    """One image's positioning and exposure (shift, scale, gamma, contrast, brightness, blur,
    noise), drawn from `rng`; exposure within narrow ranges, as wider ones cost the reference
    CNN test AUC."""
    # Exposure varies only a little: gamma 0.93-1.07 with +-0.03 brightness already cost the
    # reference small CNN about 0.03 test AUC, and anatomy and positioning alone keep the
    # mean intensity uninformative (AUC about 0.6).
    return Acquisition(
        shift_px=(rng.uniform(-3, 3), rng.uniform(-3, 3)),
        scale=rng.uniform(0.93, 1.07),
        gamma=rng.uniform(0.95, 1.05),
        contrast=rng.uniform(0.97, 1.03),
        brightness=rng.uniform(-0.015, 0.015),
        blur_px=rng.uniform(0.5, 1.1),
        noise_std=rng.uniform(0.012, 0.03),
        noise_seed=int(rng.integers(2**31)),
    )


def _grid(size: int, acquisition: Acquisition) -> tuple[np.ndarray, np.ndarray]:
    """Anatomy coordinates of each pixel after the per-image shift and scale."""
    # float32 halves the memory traffic of the elementwise maps; the detail is 8-bit anyway.
    centers = ((np.arange(size) + 0.5) / size * 2.0 - 1.0).astype(np.float32)
    x, y = np.meshgrid(centers, centers)  # x varies along columns, y along rows
    dx, dy = (2.0 * s / size for s in acquisition.shift_px)
    return (x - dx) / acquisition.scale, (y - dy) / acquisition.scale


def _soft_ellipse(
    x: np.ndarray,
    y: np.ndarray,
    center: tuple[float, float],
    radii: tuple[float, float],
    edge: float = 0.04,
) -> np.ndarray:
    """1 inside, 0 outside, with a sigmoid edge about `edge` wide (no aliased borders)."""
    r = np.sqrt(((x - center[0]) / radii[0]) ** 2 + ((y - center[1]) / radii[1]) ** 2)
    return _sigmoid((1.0 - r) / edge)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 + 0.5 * np.tanh(0.5 * z)  # the logistic function without exp's float32 overflow


def gaussian_blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur through the FFT; reflect padding keeps borders from wrapping around."""
    pad = 8 * int(np.ceil(sigma_px / 2))  # >= 4 sigma, and a multiple of 8 keeps the FFT fast
    padded = np.pad(image, pad, mode="reflect")
    freq_y = np.fft.fftfreq(padded.shape[0])[:, None]
    freq_x = np.fft.rfftfreq(padded.shape[1])[None, :]
    transfer = np.exp(-2.0 * (np.pi * sigma_px) ** 2 * (freq_y**2 + freq_x**2)).astype(image.dtype)
    blurred = np.fft.irfft2(np.fft.rfft2(padded) * transfer, s=padded.shape).astype(image.dtype)
    return blurred[pad:-pad, pad:-pad] if pad else blurred


def _smooth_noise(rng: np.random.Generator, size: int, sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-std blob texture (vessel markings, patchy consolidation)."""
    field = gaussian_blur(rng.standard_normal((size, size), dtype=np.float32), sigma_px)
    return (field - field.mean()) / (field.std() + 1e-12)


def _lungs(x: np.ndarray, y: np.ndarray, anatomy: Anatomy) -> np.ndarray:
    """Soft lung-field mask: lung ellipses above the diaphragm, minus the heart shadow."""
    fields = []
    for center, radii, dome_top in zip(anatomy.lung_centers, anatomy.lung_radii, anatomy.dome_tops):
        dome = dome_top + anatomy.dome_curvature * (x - center[0]) ** 2
        above_dome = _sigmoid((dome - y) / 0.02)
        fields.append(_soft_ellipse(x, y, center, radii) * above_dome)
    heart = _soft_ellipse(x, y, anatomy.heart_center, anatomy.heart_radii)
    return np.maximum(fields[0], fields[1]) * (1.0 - heart)


def _ribs(x: np.ndarray, y: np.ndarray, anatomy: Anatomy) -> np.ndarray:
    """Posterior ribs and clavicles: arcs leaving the spine, rising, then curving down."""
    lateral = np.abs(x)
    # Ribs are parallel copies of one arc, so the nearest rib follows from a rounding.
    offset = y - (anatomy.first_rib - 0.2 * lateral + anatomy.rib_curvature * lateral**2)
    nearest = np.clip(np.round(offset / anatomy.rib_gap), 0, anatomy.rib_count - 1)
    ribs = np.exp(-(((offset - nearest * anatomy.rib_gap) / 0.028) ** 2))
    clavicles = np.exp(-(((y - (anatomy.first_rib - 0.06 - 0.12 * lateral)) / 0.035) ** 2))
    clavicles = clavicles * _sigmoid((0.6 - lateral) / 0.03)
    # Ribs fade into the spine and, below the diaphragm, into the denser abdomen.
    thorax = _sigmoid((max(anatomy.dome_tops) + 0.12 - y) / 0.05)
    return np.maximum(ribs * thorax, clavicles) * _sigmoid((lateral - 0.06) / 0.02)


def _anatomy_image(x: np.ndarray, y: np.ndarray, anatomy: Anatomy, lungs: np.ndarray) -> np.ndarray:
    """The normal radiograph on a 0..1 scale, before exposure."""
    size = x.shape[0]
    body = _soft_ellipse(x, y, (0.0, 0.12), anatomy.body_radii, edge=0.02)
    mediastinum = _sigmoid((anatomy.mediastinum_half_width - np.abs(x)) / 0.02) * _sigmoid(
        (y + 0.85) / 0.05
    )
    spine = _sigmoid((0.055 - np.abs(x)) / 0.01) * (0.8 + 0.2 * np.cos(y * 45.0))  # vertebrae
    vessels = _smooth_noise(np.random.default_rng(anatomy.texture_seed), size, sigma_px=size / 80)
    bones = MEDIASTINUM_BOOST * mediastinum + SPINE_BOOST * spine + RIB_BOOST * _ribs(x, y, anatomy)
    image = BACKGROUND + (SOFT_TISSUE - BACKGROUND) * body
    image = image - LUNG_DARKENING * lungs * (1.0 - 0.08 * vessels)
    return image + body * bones


def _envelope(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, center: tuple[float, float]
) -> np.ndarray:
    """Smooth extent of one opacity: a randomly elongated, rotated gaussian, peak 1."""
    sigma = rng.uniform(*LESION_SIGMA)
    aspect = rng.uniform(0.6, 1.0)
    angle = rng.uniform(0.0, np.pi)
    du, dv = x - center[0], y - center[1]
    along = du * np.cos(angle) + dv * np.sin(angle)
    across = (dv * np.cos(angle) - du * np.sin(angle)) / aspect
    return np.exp(-(along**2 + across**2) / (2 * sigma**2))


def _lesions(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, lungs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """1-3 patchy opacities centred well inside the lungs: (brightness field, 0/1 mask)."""
    size = x.shape[0]
    interior = np.flatnonzero(lungs.ravel() > 0.95)
    # Mottled airspace filling: soft puffs around mean 1 (tanh keeps them from spiking).
    puffs = _smooth_noise(rng, size, LESION_PUFF_PX * size / 128)
    texture = 1.0 + LESION_MOTTLE * np.tanh(puffs)
    envelope = np.zeros_like(x)
    opacity = np.zeros_like(x)
    for _ in range(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25])):
        center = rng.choice(interior)
        extent = _envelope(rng, x, y, (x.ravel()[center], y.ravel()[center]))
        amplitude = rng.uniform(*LESION_AMPLITUDE)  # faint ground glass up to dense consolidation
        opacity += amplitude * extent
        envelope = np.maximum(envelope, extent)
    # Consolidation fills airspace: nothing outside the lung fields (heart, rib cage). The
    # mask follows the smooth extent, so the mottling does not punch holes in it.
    mask = (envelope * lungs >= MASK_FRACTION) & (lungs > 0.5)
    return opacity * texture * lungs, mask.astype(np.uint8)


def _expose(image: np.ndarray, acquisition: Acquisition) -> np.ndarray:
    """Detector blur, exposure curve and quantum noise; returns uint8."""
    image = gaussian_blur(image, acquisition.blur_px)
    image = np.clip(image, 0.0, 1.0) ** acquisition.gamma
    image = (image - 0.5) * acquisition.contrast + 0.5 + acquisition.brightness
    noise_rng = np.random.default_rng(acquisition.noise_seed)
    noise = noise_rng.standard_normal(image.shape, dtype=np.float32)
    image = image + acquisition.noise_std * noise
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def lung_fields(seed: int, size: int = 128) -> np.ndarray:
    """The 0/1 lung-field mask (uint8) of the phantom drawn from `seed`."""
    anatomy_rng, acquisition_rng, _ = _streams(seed)
    anatomy, acquisition = sample_anatomy(anatomy_rng), sample_acquisition(acquisition_rng)
    x, y = _grid(size, acquisition)
    return (_lungs(x, y, anatomy) > 0.5).astype(np.uint8)


def make_phantom(seed: int, pneumonia: bool, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A phantom radiograph (uint8, size x size) and its 0/1 lesion mask (all 0 if normal)."""
    anatomy_rng, acquisition_rng, lesion_rng = _streams(seed)
    anatomy, acquisition = sample_anatomy(anatomy_rng), sample_acquisition(acquisition_rng)
    x, y = _grid(size, acquisition)
    lungs = _lungs(x, y, anatomy)
    image = _anatomy_image(x, y, anatomy, lungs)
    mask = np.zeros((size, size), dtype=np.uint8)
    if pneumonia:
        opacity, mask = _lesions(lesion_rng, x, y, lungs)
        image = image + opacity
    return _expose(image, acquisition), mask


# The multi-label option: findings a phantom can show together, each with its own mask.
# Each looks different and sits where it would on a radiograph, so a model can tell them
# apart and a map can be checked against the lesion of the finding it explains.
MULTILABEL_FINDINGS = ("Consolidation", "Effusion", "Nodule")
# Nodules: small dense round opacities (sigma in normalized units; peak brightness).
NODULE_SIGMA = (0.05, 0.07)
NODULE_AMPLITUDE = (0.6, 0.8)
# Effusion: homogeneous fluid filling the base of one lung, up to this share of its height.
EFFUSION_DEPTH = (0.3, 0.5)
EFFUSION_AMPLITUDE = (0.45, 0.6)


def _finding_stream(seed: int, finding: str) -> np.random.Generator:
    """A generator for one finding of one phantom, independent of the three streams
    `make_phantom` draws from (SeedSequence children 3, 4, ... of the same seed)."""
    index = 3 + MULTILABEL_FINDINGS.index(finding)
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(index + 1)[index])


def _nodules(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, lungs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """1-2 small dense round opacities inside the lungs: (brightness field, 0/1 mask)."""
    interior = np.flatnonzero(lungs.ravel() > 0.95)
    opacity = np.zeros_like(x)
    for _ in range(rng.choice([1, 2])):
        center = rng.choice(interior)
        sigma = rng.uniform(*NODULE_SIGMA)
        du, dv = x - x.ravel()[center], y - y.ravel()[center]
        opacity = np.maximum(
            opacity, rng.uniform(*NODULE_AMPLITUDE) * np.exp(-(du**2 + dv**2) / (2 * sigma**2))
        )
    mask = opacity >= MASK_FRACTION * opacity.max()
    return opacity, mask.astype(np.uint8)


def _effusion(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, anatomy: Anatomy, lungs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fluid at the base of one lung, with a meniscus rising laterally: (field, mask)."""
    side = int(rng.integers(2))
    (cx, cy), (rx, ry) = anatomy.lung_centers[side], anatomy.lung_radii[side]
    # The lung field ends at its hemidiaphragm: fill up from there.
    floor = anatomy.dome_tops[side]
    level = floor - rng.uniform(*EFFUSION_DEPTH) * (floor - (cy - ry))
    meniscus = level - 0.5 * (x - cx) ** 2 * np.sign(x - cx) * np.sign(cx)
    one_lung = _soft_ellipse(x, y, (cx, cy), (rx, ry)) * lungs
    fluid = _sigmoid((y - meniscus) / 0.03) * one_lung
    mask = (fluid >= 0.5) & (lungs > 0.5)
    return rng.uniform(*EFFUSION_AMPLITUDE) * fluid, mask.astype(np.uint8)


def make_multilabel_phantom(
    seed: int, findings: tuple[str, ...] | list[str], size: int = 128
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A phantom radiograph (uint8) showing `findings` (a subset of MULTILABEL_FINDINGS;
    none: a normal phantom) and a 0/1 mask per finding shown. Anatomy and acquisition
    come from `seed` as in `make_phantom`; each finding from its own stream, so adding
    one finding does not move another."""
    unknown = set(findings) - set(MULTILABEL_FINDINGS)
    if unknown:
        raise ValueError(f"no phantom finding {sorted(unknown)} ({', '.join(MULTILABEL_FINDINGS)})")
    anatomy_rng, acquisition_rng, lesion_rng = _streams(seed)
    anatomy, acquisition = sample_anatomy(anatomy_rng), sample_acquisition(acquisition_rng)
    x, y = _grid(size, acquisition)
    lungs = _lungs(x, y, anatomy)
    image = _anatomy_image(x, y, anatomy, lungs)
    masks: dict[str, np.ndarray] = {}
    for finding in MULTILABEL_FINDINGS:
        if finding not in findings:
            continue
        if finding == "Consolidation":
            opacity, masks[finding] = _lesions(lesion_rng, x, y, lungs)
        elif finding == "Nodule":
            opacity, masks[finding] = _nodules(_finding_stream(seed, finding), x, y, lungs)
        else:
            opacity, masks[finding] = _effusion(
                _finding_stream(seed, finding), x, y, anatomy, lungs
            )
        image = image + opacity
    return _expose(image, acquisition), masks
