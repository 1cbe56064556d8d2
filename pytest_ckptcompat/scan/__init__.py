"""The static scanner: what a checkpoint needs and whether a torch would load it.

Never imports pytest and never executes a pickle: files are read as bytes
(`container`, `ziparchive`), pickles are walked symbolically (`machine`,
`fastpath`), and the facts are judged against one torch's rules (`rules`,
`releases`) into a `verdict`, with `danger`, `allowlist`, `fixes` and the
name spellings (`names`) beside. `scanner.scan_file` ties them together;
`text` renders a scan for people. safetensors headers are read by
`safetensors`, folders by `discover`. What a file holds (`show`, `diff`) is a
second walk that keeps values (`structure`), gathered by `inventory` and
compared as state dicts by `statedict`: still nothing executed, no tensor
byte read.
"""
