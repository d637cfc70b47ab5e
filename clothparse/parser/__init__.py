"""The parser product: Parser and parse (parse), its outputs, garments and colours, the network backends, packages
and export."""
