"""Scene generation: scenes as data and their MJCF, for digital twins and cousins.

    description.py  SceneDescription: floor, walls, objects (box, category, relations,
                    descriptors), the JSON that a scan's extraction writes
    parts.py, assets.py, cabinet.py   the procedural asset library (boxes, cylinders,
                    tables, shelves, articulated cabinets) written with MjSpec
    room.py         a room (walls and placed assets) as data, its MJCF, next to a body
    random_room.py  random rooms with a known layout (the generated "real" scenes)
    cousins.py      the twin and the cousins of a description
    checks.py       the physical checks every generated scene passes

Perceiving scans (reading, rendering, extraction, accuracy) is xembody.real.perception; the
twin-against-cousins policy experiment is xembody.models.cousins. Like all of sim, this
package imports neither.
"""
