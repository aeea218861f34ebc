"""What commands print: the plain data of a job turned into lines of text, one module per
command whose output needs more than a line or two."""
