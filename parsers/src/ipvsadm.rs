//! Parser for `ipvsadm -L -n` listings (owned by the engines work; filled in there).
