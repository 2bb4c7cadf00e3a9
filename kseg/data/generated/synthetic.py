"""Seeded synthetic semantic datasets: road scenes and smoke scenes.

    roads = RoadScenesDataset(count=200, height=128, width=128, seed=0)  # BG, road
    smoke = SmokeScenesDataset(count=200, height=128, width=128, seed=0)  # BG, smoke

Image i is drawn from `seed * 100003 + i`, so a dataset is identical on every
machine. The tasks are learnable but not trivial: the road is a perspective
trapezoid whose vanishing point, width and horizon vary, occluded by cars,
beside similar-gray pavement; smoke plumes vary in position, size, gray level
and density, over textured backgrounds with faint clouds (not labeled).
load_image -> [H, W, 3] uint8, load_semantic_mask -> [H, W] int32.
"""

import numpy as np
import skimage.transform
from skimage.draw import disk, polygon

from kseg.data.dataset import Dataset
from kseg.data.formats.folder import instances_from_class_map


def smooth_noise(rng, height, width, cells=6):
    """Low-frequency noise [H, W] float in [0, 1] (bicubic upsampled random grid)."""
    grid = rng.random((cells + 1, cells + 1))
    out = skimage.transform.resize(grid, (height, width), order=3, mode="edge")
    return np.clip(out, 0.0, 1.0)


class _SyntheticDataset(Dataset):
    """Shared machinery: per-image specs drawn at build time, rendered on load."""

    source = "synthetic"
    class_name = "object"

    def __init__(self, count, height, width, seed):
        super().__init__()
        self.add_class(self.source, 1, self.class_name)
        self._last = (None, None)  # (image id, rendered): load_image then load_semantic_mask
        for i in range(count):
            rng = np.random.default_rng(seed * 100003 + i)
            self.add_image(self.source, image_id=i, path=None, height=height, width=width,
                           spec=self.random_spec(rng, height, width))
        self.prepare()

    def _rendered(self, image_id):
        last_id, rendered = self._last  # one atomic read: safe with worker threads
        if last_id != image_id:
            info = self.image_info[image_id]
            rendered = self.render(info["spec"], info["height"], info["width"])
            self._last = (image_id, rendered)
        return rendered

    def load_image(self, image_id):
        """RGB image [H, W, 3] uint8."""
        return self._rendered(image_id)[0].copy()

    def load_semantic_mask(self, image_id):
        """Class map [H, W] int32: 0 BG, 1 the class."""
        return self._rendered(image_id)[1].copy()

    def load_mask(self, image_id):
        """Connected components: masks [H, W, N] bool, class ids [N] int32."""
        return instances_from_class_map(self.load_semantic_mask(image_id), 2)

    def image_reference(self, image_id):
        return f"{self.source}:{image_id}"


class RoadScenesDataset(_SyntheticDataset):
    """Dash-cam-like scenes: sky, buildings, trees, a road in perspective, cars. Classes BG, road."""

    source = "road_scenes"
    class_name = "road"

    def __init__(self, count=200, height=128, width=128, seed=0):
        super().__init__(count, height, width, seed)

    @staticmethod
    def random_spec(rng, height, width):
        """Scene parameters drawn from `rng` (a dict stored in `image_info[i]["spec"]`)."""
        vp_x = rng.uniform(0.25, 0.75) * width
        return {
            "horizon": rng.uniform(0.3, 0.55) * height, "vp_x": vp_x,
            "bottom_x": vp_x + rng.uniform(-0.35, 0.35) * width,
            "bottom_half": rng.uniform(0.22, 0.6) * width,
            "top_half": rng.uniform(0.005, 0.03) * width,
            "road_color": rng.uniform(70, 130) + rng.uniform(-8, 8, 3),
            "ground_color": _ground_color(rng),
            "sky": (rng.uniform([90, 130, 180], [170, 190, 250]), rng.uniform(150, 230, 3)),
            "buildings": [(rng.uniform(-0.1, 1.0), rng.uniform(0.05, 0.25), rng.uniform(0.05, 0.35),
                           rng.uniform(60, 200, 3)) for _ in range(rng.integers(0, 6))],
            "trees": [(rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.03, 0.09))
                      for _ in range(rng.integers(0, 5))],
            "cars": [(rng.uniform(0.15, 0.9), rng.uniform(-0.7, 0.7), rng.uniform(0, 255, 3))
                     for _ in range(rng.integers(0, 4))],
            "lanes": bool(rng.random() < 0.8), "edges": bool(rng.random() < 0.5),
            "noise_seed": int(rng.integers(0, 2**31)), "gain": rng.uniform(0.7, 1.2),
        }

    @staticmethod
    def render(spec, height, width):
        """(image [H, W, 3] uint8, class map [H, W] int32) from a spec."""
        rng = np.random.default_rng(spec["noise_seed"])
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
        horizon = spec["horizon"]
        image = _sky_and_ground(spec, yy, height, width, rng)
        _draw_buildings(image, spec, horizon, width)
        t = np.clip((yy - horizon) / (height - horizon), 0, 1)
        center = spec["vp_x"] + t * (spec["bottom_x"] - spec["vp_x"])
        half = spec["top_half"] + t * (spec["bottom_half"] - spec["top_half"])
        road = (yy >= horizon) & (np.abs(xx - center) <= half)
        image[road] = spec["road_color"] * (0.9 + 0.2 * smooth_noise(rng, height, width, 10))[road, None]
        _draw_lane_marks(image, spec, road, xx, t, center, half)
        occluded = np.zeros([height, width], bool)
        _draw_trees(image, occluded, spec, horizon, height, width)
        for car in sorted(spec["cars"], key=lambda c: c[0]):
            _draw_car(image, occluded, car, spec, height, width)
        image = image * spec["gain"] + rng.normal(0, 5, image.shape)
        mask = (road & ~occluded).astype(np.int32)
        return np.clip(image, 0, 255).round().astype(np.uint8), mask


def _ground_color(rng):
    kind = rng.integers(0, 3)
    if kind == 0:
        return rng.uniform([40, 90, 30], [90, 150, 70])  # grass
    if kind == 1:
        return rng.uniform([110, 90, 60], [160, 130, 90])  # dirt
    return rng.uniform(90, 150) + rng.uniform(-10, 10, 3)  # pavement, road-like gray


def _sky_and_ground(spec, yy, height, width, rng):
    top, bottom = spec["sky"]
    frac = np.clip(yy / max(spec["horizon"], 1), 0, 1)[..., None]
    image = top * (1 - frac) + bottom * frac
    ground = yy >= spec["horizon"]
    texture = 0.8 + 0.4 * smooth_noise(rng, height, width, 12)
    image[ground] = (spec["ground_color"] * texture[..., None])[ground]
    return image


def _draw_buildings(image, spec, horizon, width):
    for x, w, h, color in spec["buildings"]:
        x0, x1 = int(x * width), int((x + w) * width)
        y0 = int(max(0, horizon - h * image.shape[0]))
        block = image[y0:int(horizon), max(x0, 0):max(x1, 0)]
        block[:] = color
        block[1::4, 1::3] = color * 0.5  # windows


def _draw_lane_marks(image, spec, road, xx, t, center, half):
    dashes = np.sin(2 * np.pi * 2.0 / (t + 0.15)) > 0.2
    line = 0.6 + 0.03 * half
    marks = np.zeros_like(road)
    if spec["lanes"]:
        marks |= (np.abs(xx - center) <= line * 0.6) & dashes
    if spec["edges"]:
        marks |= np.abs(np.abs(xx - center) - 0.9 * half) <= line * 0.5
    image[road & marks] = (235, 235, 220)


def _draw_trees(image, occluded, spec, horizon, height, width):
    for x, depth, size in spec["trees"]:
        base_y = horizon + depth * 0.3 * (height - horizon)
        radius = size * min(height, width) * (1 + depth)
        cx = x * width
        rr, cc = polygon([base_y, base_y, base_y - 2 * radius, base_y - 2 * radius],
                         [cx - radius / 5, cx + radius / 5, cx + radius / 5, cx - radius / 5],
                         shape=(height, width))
        image[rr, cc] = (90, 60, 30)
        occluded[rr, cc] = True
        rr, cc = disk((base_y - 2 * radius, cx), radius, shape=(height, width))
        image[rr, cc] = (30, 100 + 60 * depth, 35)
        occluded[rr, cc] = True


def _draw_car(image, occluded, car, spec, height, width):
    t, offset, color = car
    horizon = spec["horizon"]
    y = horizon + t * (height - horizon)
    center = spec["vp_x"] + t * (spec["bottom_x"] - spec["vp_x"])
    half = spec["top_half"] + t * (spec["bottom_half"] - spec["top_half"])
    cx = center + offset * half
    cw = (0.05 + 0.2 * t) * width
    ch = 0.6 * cw
    rows = [y - ch, y - ch, y, y]
    cols = [cx - cw / 2, cx + cw / 2, cx + cw / 2, cx - cw / 2]
    rr, cc = polygon(rows, cols, shape=(height, width))
    image[rr, cc] = color
    occluded[rr, cc] = True
    rr, cc = polygon([y - ch, y - ch, y - ch / 2, y - ch / 2],
                     [cx - cw / 3, cx + cw / 3, cx + cw / 3, cx - cw / 3], shape=(height, width))
    image[rr, cc] = (40, 50, 60)


class SmokeScenesDataset(_SyntheticDataset):
    """Textured outdoor backgrounds with soft semi-transparent smoke plumes. Classes BG, smoke.

    The mask is smoke alpha > 0.3; about 1 image in 10 has no smoke.
    """

    source = "smoke_scenes"
    class_name = "smoke"

    def __init__(self, count=200, height=128, width=128, seed=0):
        super().__init__(count, height, width, seed)

    @staticmethod
    def random_spec(rng, height, width):
        """Scene parameters drawn from `rng` (a dict stored in `image_info[i]["spec"]`)."""
        n_plumes = 0 if rng.random() < 0.1 else int(rng.integers(1, 3))
        return {
            "horizon": rng.uniform(0.2, 0.7),
            "sky": rng.uniform([100, 120, 150], [200, 215, 250]),
            "ground": rng.uniform([30, 40, 20], [140, 140, 110]),
            "plumes": [_random_plume(rng) for _ in range(n_plumes)],
            "clouds": [(rng.uniform(0, 1), rng.uniform(0, 0.3), rng.uniform(0.05, 0.2))
                       for _ in range(rng.integers(0, 3))],
            "noise_seed": int(rng.integers(0, 2**31)),
        }

    @staticmethod
    def render(spec, height, width):
        """(image [H, W, 3] uint8, class map [H, W] int32) from a spec."""
        rng = np.random.default_rng(spec["noise_seed"])
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) / max(height, width)
        hills = spec["horizon"] + 0.1 * (smooth_noise(rng, 1, width, 4)[0] - 0.5)
        ground = yy >= hills[None, :] * height / max(height, width)
        texture = 0.7 + 0.6 * smooth_noise(rng, height, width, 16)
        image = np.where(ground[..., None], spec["ground"] * texture[..., None], spec["sky"])
        for x, y, size in spec["clouds"]:  # faint, unlabeled distractors
            cloud = 0.25 * np.exp(-((xx - x) ** 2 + ((yy - y) * 2) ** 2) / (2 * size**2))
            image = image * (1 - cloud[..., None]) + 245 * cloud[..., None]
        alpha_total = np.zeros([height, width])
        for plume in spec["plumes"]:
            density = _plume_density(plume, xx, yy)
            density *= 0.6 + 0.8 * smooth_noise(rng, height, width, 10)
            alpha = np.clip((1 - np.exp(-density)) * plume["opacity"], 0, 0.95)
            image = image * (1 - alpha[..., None]) + plume["gray"] * alpha[..., None]
            alpha_total = 1 - (1 - alpha_total) * (1 - alpha)
        image = image + rng.normal(0, 4, image.shape)
        mask = (alpha_total > 0.3).astype(np.int32)
        return np.clip(image, 0, 255).round().astype(np.uint8), mask


def _random_plume(rng):
    gray = rng.uniform(60, 120) if rng.random() < 0.3 else rng.uniform(150, 240)
    return {
        "x0": rng.uniform(0.1, 0.9), "y0": rng.uniform(0.5, 1.0),
        "angle": rng.uniform(-0.6, 0.6), "length": rng.uniform(0.15, 0.5),
        "sigma": rng.uniform(0.012, 0.035), "growth": rng.uniform(1.0, 3.0),
        "blobs": int(rng.integers(6, 14)), "jitter": rng.normal(0, 0.03, (14, 2)),
        "gray": gray + rng.uniform(-10, 10, 3), "opacity": rng.uniform(0.6, 1.0),
    }


def _plume_density(plume, xx, yy):
    """Sum of gaussian blobs along a rising path -> density [H, W] (coords in [0, 1])."""
    density = np.zeros_like(xx)
    for k in range(plume["blobs"]):
        s = k / max(plume["blobs"] - 1, 1)
        cx = plume["x0"] + np.sin(plume["angle"]) * plume["length"] * s + plume["jitter"][k, 0]
        cy = plume["y0"] - np.cos(plume["angle"]) * plume["length"] * s + plume["jitter"][k, 1]
        sigma = plume["sigma"] * (1 + plume["growth"] * s)
        density += 2.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    return density
