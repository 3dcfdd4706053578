"""Perception of scans: RGB-D frames or a point cloud of a room become a SceneDescription
(xembody.sim.scenes.description), the input of the digital twin and its cousins.

    scan.py       the scan format: read a scan folder or a .ply/.pcd cloud as one world-frame
                  cloud; render a synthetic scan of a MuJoCo scene in the same format
    extract.py    geometric extraction with open3d: floor and walls, objects, boxes,
                  relations, descriptors, categories
    accuracy.py   how well an extracted description matches the truth (issue 10's targets)
    evaluate.py   the whole pipeline (scan, extract, score, twin and cousins) on generated
                  rooms of known layout, and its section of docs/RESULTS.md

Why here, in real/: scans come from the world the robot stands in; perceiving them is the
robot side's input to simulation, as recorded datasets are. A rendered scan stands in for
an RGB-D camera as real/proxy.py stands in for a robot. Scene generation (descriptions,
assets, rooms, twin and cousins, physical checks) is simulation and stays in
xembody.sim.scenes, which this package imports; sim never imports it. models never imports
real either, so the twin-against-cousins experiment (xembody.models.cousins) is handed
`scan_and_extract` by its caller (the CLI, the tests).
"""
