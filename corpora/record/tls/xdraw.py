#!/usr/bin/env python3
"""Draws a deterministic blocky pattern on an X display (Xlib via ctypes).

usage: xdraw.py DISPLAY SEED [X Y W H]
Fills the area (default: the whole 320x240 screen) with 2x2 blocks whose
colours come from a fixed LCG seeded with SEED, so every run of a recording
script puts the same pixels on the screen, and the encoded updates are not
trivially small (some records span more than one TLS record / TCP segment).
"""
import ctypes
import sys

x11 = ctypes.CDLL("libX11.so.6")
x11.XOpenDisplay.restype = ctypes.c_void_p
x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
x11.XDefaultRootWindow.restype = ctypes.c_ulong
x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
x11.XCreateGC.restype = ctypes.c_void_p
x11.XCreateGC.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_void_p]
x11.XSetForeground.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulong]
x11.XFillRectangle.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p,
                               ctypes.c_int, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
x11.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]

d = x11.XOpenDisplay(sys.argv[1].encode())
if not d:
    sys.exit("cannot open display")
seed = int(sys.argv[2])
x0, y0, w, h = (int(v) for v in sys.argv[3:7]) if len(sys.argv) >= 7 else (0, 0, 320, 240)
root = x11.XDefaultRootWindow(d)
gc = x11.XCreateGC(d, root, 0, None)
state = seed * 2654435761 & 0xFFFFFFFF
for y in range(y0, y0 + h, 2):
    for x in range(x0, x0 + w, 2):
        state = (state * 1103515245 + 12345) & 0xFFFFFFFF
        # 4096 colours in 2x2 blocks: too many for a palette, so the
        # encoders have to send real pixel data.
        c = (state >> 12) & 0xFFF
        colour = (c & 15) * 0x11 << 16 | (c >> 4 & 15) * 0x11 << 8 | (c >> 8 & 15) * 0x11
        x11.XSetForeground(d, gc, colour)
        x11.XFillRectangle(d, root, gc, x, y, 2, 2)
x11.XSync(d, 0)
