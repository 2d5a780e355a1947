"""The explanation methods and the checks of their maps.

One contract, for every method in `methods.METHODS`:

    method(model, images) -> maps

`images` (n, h, w, 1) float32 raw pixels in [0, 255], as the Transform's splits give them;
`maps` (n, h, w) float32 in [0, 1] at the input resolution, each map divided by its own
peak (all zeros where there is no positive evidence). Options are keyword arguments with
defaults, so the registry can call every method alike.

The checks take maps made this way: sanity_checks (Adebayo et al. 2018), faithfulness
(deletion and insertion curves), localization (against known lesion masks). Nothing
here imports a pipeline step; the steps import this.
"""
