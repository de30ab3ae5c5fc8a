"""One module per input format; each turns a file or response into Paper records."""
