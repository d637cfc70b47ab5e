"""The parser product: Parser and parse (parse), the files written of a result (outputs) and the command line's
files in, folder out (files), figures of results (figures), garments and colours, the network backends,
packages and export."""
