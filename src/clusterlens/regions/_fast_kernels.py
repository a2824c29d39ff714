"""Numba kernels of the ``fast`` backend: one compiled pass per step, no temporaries.

Why compiled loops here (measured in ``docs/regions.md``): the vectorised NumPy
version spent most of its time allocating (M, f, f) temporaries for the boundary band,
converting the band to CIELAB with OpenCV twice over and labelling connected pieces
with scikit-image -- each a separate pass over memory. A compiled loop does each
step in one pass, touching only the pixels that need it, and computes CIELAB inline
for just the boundary pixels from two small lookup tables.

Conventions: images are (H, W, 3) float32 RGB in [0, 1]; labels are int32; a cluster
centre is (L, a, b, y, x) with y, x in the pixel units of the image it was computed on.
"""

from __future__ import annotations

import numba
import numpy as np

_LUT_SIZE = 4096
#: Larger than any SLIC distance; finite because fastmath kernels assume no infinities.
_FAR = np.float32(3.0e38)


def _gamma_table() -> np.ndarray:
    """sRGB decoding (gamma -> linear) of the 256 8-bit levels.

    Colour is looked up at 8-bit precision (a float input is rounded to the nearest
    1/255): exact for images that came from 8-bit files, within 0.2% otherwise, and
    one table read instead of a power per channel.
    """
    value = np.arange(256) / 255.0
    linear = np.where(value <= 0.04045, value / 12.92, ((value + 0.055) / 1.055) ** 2.4)
    return linear.astype(np.float32)


def _lab_f_table() -> np.ndarray:
    """CIELAB's f(t) (cube root with a linear toe) sampled on [0, 1]."""
    t = np.linspace(0.0, 1.0, _LUT_SIZE + 1)
    delta = 6.0 / 29.0
    f = np.where(t > delta**3, np.cbrt(t), t / (3 * delta**2) + 4.0 / 29.0)
    return f.astype(np.float32)


GAMMA_LUT = _gamma_table()
LAB_F_LUT = _lab_f_table()
# D65 white, the same constants as scikit-image's rgb2lab and OpenCV's RGB2Lab.
_RGB_TO_XYZ = np.array(
    [
        [0.412453 / 0.950456, 0.357580 / 0.950456, 0.180423 / 0.950456],
        [0.212671, 0.715160, 0.072169],
        [0.019334 / 1.088754, 0.119193 / 1.088754, 0.950227 / 1.088754],
    ],
    dtype=np.float32,
)


@numba.njit(cache=True, fastmath=True, inline="always")
def _lookup(table, value):
    """Linear interpolation in a table sampled uniformly on [0, 1]; clamps outside."""
    position = min(max(value, np.float32(0.0)), np.float32(1.0)) * np.float32(_LUT_SIZE)
    index = min(np.int32(position), np.int32(_LUT_SIZE - 1))
    fraction = position - np.float32(index)
    return table[index] + fraction * (table[index + 1] - table[index])


@numba.njit(cache=True, fastmath=True, inline="always")
def _decode(value):
    """Linear intensity of an sRGB value in [0, 1] (clamped), at 8-bit precision."""
    level = np.int32(min(max(value, np.float32(0.0)), np.float32(1.0)) * np.float32(255) + 0.5)
    return GAMMA_LUT[level]


@numba.njit(cache=True, fastmath=True, inline="always")
def _pixel_lab(rgb, row, col):
    """CIELAB (L, a, b) of one pixel of an sRGB image in [0, 1]."""
    red = _decode(rgb[row, col, 0])
    green = _decode(rgb[row, col, 1])
    blue = _decode(rgb[row, col, 2])
    m = _RGB_TO_XYZ
    fx = _lookup(LAB_F_LUT, m[0, 0] * red + m[0, 1] * green + m[0, 2] * blue)
    fy = _lookup(LAB_F_LUT, m[1, 0] * red + m[1, 1] * green + m[1, 2] * blue)
    fz = _lookup(LAB_F_LUT, m[2, 0] * red + m[2, 1] * green + m[2, 2] * blue)
    return (
        np.float32(116.0) * fy - np.float32(16.0),
        np.float32(500.0) * (fx - fy),
        np.float32(200.0) * (fy - fz),
    )


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 CIELAB of an sRGB image in [0, 1] (D65, as scikit-image)."""
    return _rgb_to_lab(np.ascontiguousarray(rgb, dtype=np.float32))


@numba.njit(cache=True, fastmath=True)
def _rgb_to_lab(rgb):
    height, width = rgb.shape[:2]
    lab = np.empty((height, width, 3), dtype=np.float32)
    for row in range(height):
        for col in range(width):
            lab[row, col, 0], lab[row, col, 1], lab[row, col, 2] = _pixel_lab(rgb, row, col)
    return lab


@numba.njit(cache=True, fastmath=True)
def cell_slic(lab, cell_h, cell_w, weight, iterations):
    """SLIC k-means with one seed per ``cell_h x cell_w`` cell, started at the cell means.

    Each pixel is compared with the 9 seeds of its own cell and the 8 around it
    (edge cells repeat their border neighbours). Distance: squared CIELAB difference +
    ``weight`` x squared pixel distance. A seed that loses all its pixels keeps its
    position. Returns (H, W) int32 seed ids (``rows * cols`` of them, some maybe unused).
    """
    height, width = lab.shape[:2]
    rows = (height + cell_h - 1) // cell_h
    cols = (width + cell_w - 1) // cell_w
    seeds = rows * cols
    labels = np.empty((height, width), dtype=np.int32)
    for row in range(height):
        for col in range(width):
            labels[row, col] = (row // cell_h) * cols + col // cell_w
    centres = _label_means(lab, labels, seeds)
    for _ in range(iterations):
        for row in range(height):
            home_row = row // cell_h
            for col in range(width):
                home_col = col // cell_w
                best, best_distance = 0, _FAR
                for near_row in range(max(home_row - 1, 0), min(home_row + 2, rows)):
                    for near_col in range(max(home_col - 1, 0), min(home_col + 2, cols)):
                        seed = near_row * cols + near_col
                        distance = _slic_distance(lab, row, col, centres[seed], weight)
                        if distance < best_distance:
                            best, best_distance = seed, distance
                labels[row, col] = best
        updated = _label_means(lab, labels, seeds)
        for seed in range(seeds):
            if updated[seed, 5] > 0:
                centres[seed] = updated[seed]
    return labels


@numba.njit(cache=True, fastmath=True, inline="always")
def _slic_distance(lab, row, col, centre, weight):
    dl = lab[row, col, 0] - centre[0]
    da = lab[row, col, 1] - centre[1]
    db = lab[row, col, 2] - centre[2]
    dy = row - centre[3]
    dx = col - centre[4]
    return dl * dl + da * da + db * db + weight * (dy * dy + dx * dx)


@numba.njit(cache=True)
def _label_means(lab, labels, count):
    """(count, 6): mean L, a, b, y, x and the pixel count (column 5) of each label."""
    sums = np.zeros((count, 6), dtype=np.float64)
    height, width = labels.shape
    for row in range(height):
        for col in range(width):
            entry = sums[labels[row, col]]
            entry[0] += lab[row, col, 0]
            entry[1] += lab[row, col, 1]
            entry[2] += lab[row, col, 2]
            entry[3] += row
            entry[4] += col
            entry[5] += 1.0
    means = np.zeros((count, 6), dtype=np.float32)
    for label in range(count):
        pixels = sums[label, 5]
        if pixels > 0:
            for feature in range(5):
                means[label, feature] = sums[label, feature] / pixels
            means[label, 5] = pixels
    return means


def label_centres(lab: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(K, 5) mean L, a, b, y, x of each label 0..K-1 (consecutive labels)."""
    return _label_means(lab, labels, int(labels.max()) + 1)[:, :5]


@numba.njit(cache=True, fastmath=True)
def refine_boundaries(rgb, coarse_labels, centres, factor, weight):
    """Labels of a ``factor``-times finer image, re-deciding pixels between coarse labels.

    A fine pixel lies between four coarse pixel centres; when their labels agree it
    takes that label, otherwise the nearest of those (at most four) labels' centres
    in CIELAB + ``weight`` x squared distance (fine pixel units). Coarse pixel centre
    ``c`` sits at fine coordinate ``(c + 0.5) * factor - 0.5``. CIELAB is computed
    only for these boundary pixels.
    """
    height, width = rgb.shape[:2]
    coarse_h, coarse_w = coarse_labels.shape
    half = factor // 2
    # fine-pixel coordinates of the centres, once per label instead of once per pixel
    centre_rows = (centres[:, 3] + 0.5) * factor - 0.5
    centre_cols = (centres[:, 4] + 0.5) * factor - 0.5
    left_of = np.empty(width, dtype=np.int64)
    right_of = np.empty(width, dtype=np.int64)
    for col in range(width):
        left_of[col] = min(max((col + half) // factor - 1, 0), coarse_w - 1)
        right_of[col] = min((col + half) // factor, coarse_w - 1)
    labels = np.empty((height, width), dtype=np.int32)
    for row in range(height):
        above = coarse_labels[min(max((row + half) // factor - 1, 0), coarse_h - 1)]
        below = coarse_labels[min((row + half) // factor, coarse_h - 1)]
        for col in range(width):
            first = above[left_of[col]]
            second = above[right_of[col]]
            third = below[left_of[col]]
            fourth = below[right_of[col]]
            if first == second and first == third and first == fourth:
                labels[row, col] = first
                continue
            lightness, green_red, blue_yellow = _pixel_lab(rgb, row, col)
            best, best_distance = first, _FAR
            for candidate in (first, second, third, fourth):
                centre = centres[candidate]
                dl = lightness - centre[0]
                da = green_red - centre[1]
                db = blue_yellow - centre[2]
                dy = row - centre_rows[candidate]
                dx = col - centre_cols[candidate]
                distance = dl * dl + da * da + db * db + weight * (dy * dy + dx * dx)
                if distance < best_distance:
                    best, best_distance = candidate, distance
            labels[row, col] = best
    return labels


@numba.njit(cache=True)
def connected_pieces(labels):
    """4-connected pieces of equal labels: (H, W) piece ids 0..P-1, sizes, owner labels.

    Works on horizontal runs rather than pixels (superpixel rows are runs of tens of
    pixels): runs of one row are joined to overlapping runs of the row above with the
    same label by union-find, then each run is written out with its piece id.
    """
    height, width = labels.shape
    run_row, run_start, run_end, parent = _horizontal_runs(labels)
    runs = run_row.shape[0]
    piece_of_root = np.full(runs, -1, dtype=np.int32)
    sizes = np.zeros(runs, dtype=np.int64)
    owners = np.empty(runs, dtype=np.int32)
    pieces = np.empty((height, width), dtype=np.int32)
    count = 0
    for run in range(runs):
        root = _find(parent, run)
        if piece_of_root[root] < 0:
            piece_of_root[root] = count
            owners[count] = labels[run_row[root], run_start[root]]
            count += 1
        piece = piece_of_root[root]
        sizes[piece] += run_end[run] - run_start[run]
        pieces[run_row[run], run_start[run] : run_end[run]] = piece
    return pieces, sizes[:count].copy(), owners[:count].copy()


@numba.njit(cache=True)
def _horizontal_runs(labels):
    """Runs (row, start, end) of equal labels, and a union-find forest joining runs that
    touch the run above them with the same label."""
    height, width = labels.shape
    run_row = np.empty(height * width, dtype=np.int32)
    run_start = np.empty(height * width, dtype=np.int32)
    run_end = np.empty(height * width, dtype=np.int32)
    parent = np.empty(height * width, dtype=np.int32)
    runs = 0
    previous_first = previous_last = 0  # run ids of the row above: [first, last)
    for row in range(height):
        row_first = runs
        start = 0
        for col in range(1, width + 1):
            if col < width and labels[row, col] == labels[row, start]:
                continue
            run_row[runs], run_start[runs], run_end[runs] = row, start, col
            parent[runs] = runs
            runs += 1
            start = col
        above = previous_first
        for run in range(row_first, runs):  # two pointers over overlapping runs
            while above < previous_last and run_end[above] <= run_start[run]:
                above += 1
            other = above
            while other < previous_last and run_start[other] < run_end[run]:
                if labels[row - 1, run_start[other]] == labels[row, run_start[run]]:
                    _union(parent, run, other)
                other += 1
        previous_first, previous_last = row_first, runs
    return run_row[:runs], run_start[:runs], run_end[:runs], parent[:runs]


@numba.njit(cache=True, inline="always")
def _find(parent, node):
    root = node
    while parent[root] != root:
        root = parent[root]
    while parent[node] != root:  # path compression
        parent[node], node = root, parent[node]
    return root


@numba.njit(cache=True, inline="always")
def _union(parent, first, second):
    first_root, second_root = _find(parent, first), _find(parent, second)
    if first_root != second_root:
        parent[max(first_root, second_root)] = min(first_root, second_root)


@numba.njit(cache=True)
def absorb_orphans(pieces, owners, keep):
    """Final labels: kept pieces keep their owner label; every other piece joins a
    4-adjacent piece that is settled (kept, or absorbed in an earlier sweep).

    Whole pieces move, so every label stays one connected region. Sweeps repeat
    until nothing changes; a piece with no settled neighbour at all (possible only
    if nothing is kept) keeps its own label.
    """
    height, width = pieces.shape
    final = np.full(owners.shape[0], -1, dtype=np.int32)
    for piece in range(owners.shape[0]):
        if keep[piece]:
            final[piece] = owners[piece]
    changed = True
    while changed:
        changed = False
        for row in range(height):
            for col in range(width):
                piece = pieces[row, col]
                if final[piece] >= 0:
                    continue
                for step in range(4):
                    near_row = row + (step == 1) - (step == 0)
                    near_col = col + (step == 3) - (step == 2)
                    if 0 <= near_row < height and 0 <= near_col < width:
                        settled = final[pieces[near_row, near_col]]
                        if settled >= 0:
                            final[piece] = settled
                            changed = True
                            break
    for piece in range(final.shape[0]):
        if final[piece] < 0:
            final[piece] = owners[piece]
    labels = np.empty((height, width), dtype=np.int32)
    for row in range(height):
        for col in range(width):
            labels[row, col] = final[pieces[row, col]]
    return labels


@numba.njit(cache=True)
def consecutive(labels):
    """The same partition with labels renumbered 0..K-1 in order of first value."""
    present = np.zeros(labels.max() + 1, dtype=np.int32)
    for value in labels.ravel():
        present[value] = 1
    new_ids = np.cumsum(present) - 1
    out = np.empty(labels.shape, dtype=np.int32)
    flat_out = out.ravel()
    for index, value in enumerate(labels.ravel()):
        flat_out[index] = new_ids[value]
    return out
