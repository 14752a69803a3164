"""The machine around a search: file locks (:mod:`.file_lock`), owner-only folders and the lock
of a search dir (:mod:`.dir_guard`), passwords kept out of files and output (:mod:`.redact`), and the
services a search needs, checked before it starts (:mod:`.services`).
"""
