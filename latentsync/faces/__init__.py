"""Faces: detection, tracking, smoothing, alignment to the template and paste-back, and the face choice.

One module per job (see docs/faces.md): `settings` (configs/faces.yaml as the `FacesConfig` record, read once),
`backends/` (detector + landmark models), `detector` (valid faces, the face to edit), `tracking` (follow that
face), `all_faces` (follow every face), `speaker` (which face speaks), `choice` (the user's face choice resolved
into a `FaceChoice`), `smoothing`, `alignment` (`AlignRestore`), `video` (a whole video's face pass and
paste-back) and `face_pass` (that pass streamed chunk by chunk along the output, for inference). Nothing is
imported here, so importing one module stays cheap.
"""
