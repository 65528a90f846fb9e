//! TCP reassembly: directional byte streams plus open/FIN/RST/gap events.
