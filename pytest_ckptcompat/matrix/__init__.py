"""The version matrix: its config, its nox sessions, the merged report, and the gate.

Never imports torch: the cells run in their own environments and hand over
JSON cell reports; `merge` turns them into one `ckptcompat.matrix/1`
document, `render` into Markdown, HTML and JUnit, and `gate` judges it.
"""
