#!/usr/bin/python3
"""Closes the windows of one X client the way a window manager's close
button does: a WM_PROTOCOLS/WM_DELETE_WINDOW client message to each mapped
top-level window whose _NET_WM_PID is the given PID (GTK then runs its
delete-event handler, as if the user clicked the close button).

If the client shows a dialog (a window with WM_TRANSIENT_FOR, e.g.
remote-viewer's "Authentication required"), only the dialogs are closed,
as a user would (the main window does not take a close while a modal dialog
runs).

Usage: DISPLAY=:N x-close.py PID [--list]
Prints the windows it closed (id and title); exits 1 if it found none.
"""
import sys

from Xlib import X, display, protocol


def main():
    pid = int(sys.argv[1])
    only_list = "--list" in sys.argv[2:]
    d = display.Display()
    root = d.screen().root
    net_wm_pid = d.intern_atom("_NET_WM_PID")
    wm_protocols = d.intern_atom("WM_PROTOCOLS")
    wm_delete = d.intern_atom("WM_DELETE_WINDOW")
    wins = []
    for w in root.query_tree().children:
        try:
            p = w.get_full_property(net_wm_pid, X.AnyPropertyType)
            if not p or p.value[0] != pid:
                continue
            if w.get_attributes().map_state != X.IsViewable:
                continue
            name = w.get_wm_name()
            dialog = w.get_wm_transient_for() is not None
        except Exception:
            continue
        wins.append((w, name, dialog))
    if any(dialog for _, _, dialog in wins):
        wins = [x for x in wins if x[2]]
    for w, name, dialog in wins:
        print(f"0x{w.id:x} {name!r}{' (dialog)' if dialog else ''}")
        if only_list:
            continue
        ev = protocol.event.ClientMessage(
            window=w, client_type=wm_protocols,
            data=(32, [wm_delete, X.CurrentTime, 0, 0, 0]))
        w.send_event(ev, event_mask=X.NoEventMask)
    d.flush()
    d.close()
    sys.exit(0 if wins else 1)


if __name__ == "__main__":
    main()
