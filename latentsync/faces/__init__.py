"""Faces: detection, tracking, smoothing, alignment to the template and paste-back, and the face choice.

One module per job (see docs/faces.md): `backends/` (detector + landmark models), `detector` (valid faces, the
face to edit), `tracking` (follow that face), `all_faces` (follow every face), `speaker` (which face speaks),
`choice` (the user's face choice as tracker settings), `smoothing`, `alignment` (`AlignRestore`) and `video`
(a whole video's face pass and paste-back). Nothing is imported here, so importing one module stays cheap.
"""
