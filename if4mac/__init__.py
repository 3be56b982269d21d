"""if4mac: open hardware design and simulation toolkit for IF4 multiply-accumulate units."""

__version__ = "0.1.0"
