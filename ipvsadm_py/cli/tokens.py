"""argv as tokens, by popt's rules (as ipvsadm reads its command line)."""

from __future__ import annotations

from collections.abc import Sequence

from ipvsadm_py.cli.spec import (BY_NAME, BY_SHORT, CMD_LONG, CMD_SHORT, FULLNAT_B,
                                 WITH_ARGUMENT, Opt)

# (kind, name, value): kind is "cmd" (a command), "opt" (an option), "arg"
# (a plain word), "bad" (an unknown option) or "noarg" (its value is missing).
Token = tuple[str, str, "str | None"]


def _single_words(shorts: dict[str, Opt]) -> dict[str, tuple[str, str, str]]:
    """Words of one short letter ("-t") -> (kind, name, how it takes a value):
    the bundle rules below, worked out once."""
    out = {f"-{ch}": ("opt", opt.name, opt.arg) for ch, opt in shorts.items()}
    out.update({f"-{ch}": ("cmd", name, "none") for ch, name in CMD_SHORT.items()})
    return out


SHORTS_FULLNAT = dict(BY_SHORT, b=FULLNAT_B)
SINGLE = _single_words(BY_SHORT)
SINGLE_FULLNAT = _single_words(SHORTS_FULLNAT)


def tokens(argv: Sequence[str], fullnat_b: bool = False) -> list[Token]:
    """argv as tokens.

    popt's rules: ``--long[=value]``; ``-abc`` bundles short options, an
    option that takes a value takes the rest of the bundle or the next word;
    an optional value is taken only if the next word does not start with
    ``-``; ``--`` ends the options; other words are arguments.  With
    ``fullnat_b`` (real-server commands), ``-b`` is FULLNAT, without a value.
    Words of one letter are looked up in ``SINGLE`` (``SINGLE_FULLNAT``)
    first: most words of a restore file are such words.
    """
    shorts = SHORTS_FULLNAT if fullnat_b else BY_SHORT
    single = SINGLE_FULLNAT if fullnat_b else SINGLE
    out: list[Token] = []
    i, n = 0, len(argv)
    while i < n:
        word = argv[i]
        i += 1
        one = single.get(word)
        if one is not None:
            kind, name, arg = one
            if arg == "none":
                out.append((kind, name, None))
            elif arg == "optional" and (i >= n or argv[i].startswith("-")):
                out.append(("opt", name, None))
            elif i < n:
                out.append(("opt", name, argv[i]))
                i += 1
            else:
                out.append(("noarg", word, None))
            continue
        if word == "--":
            out += [("arg", w, None) for w in argv[i:]]
            break
        if word.startswith("--"):
            i = _long(word, argv, i, out)
        elif word.startswith("-") and len(word) > 1:
            i = _bundle(word, argv, i, shorts, out)
        else:
            out.append(("arg", word, None))
    return out


def _long(word: str, argv: Sequence[str], i: int, out: list[Token]) -> int:
    """One ``--name[=value]`` word (and its value word); returns the next index."""
    n = len(argv)
    name, eq, value = word[2:].partition("=")
    if name in CMD_LONG:
        command = CMD_LONG[name]
        if command in WITH_ARGUMENT and not eq:
            if i >= n:
                out.append(("noarg", word, None))
                return i
            value, i = argv[i], i + 1
        out.append(("cmd", command, value if (eq or command in WITH_ARGUMENT) else None))
        return i
    opt = BY_NAME.get(name)
    if opt is None:
        out.append(("bad", word, None))
    elif opt.arg == "none":
        out.append(("opt", opt.name, None) if not eq else ("bad", word, None))
    elif eq:
        out.append(("opt", opt.name, value))
    else:
        i = _value_word(opt, word, argv, i, out)
    return i


def _value_word(opt: Opt, word: str, argv: Sequence[str], i: int,
                out: list[Token]) -> int:
    """The value of ``opt`` (written as ``word``) from the next word: taken
    when one is there (an optional value only if it is not an option);
    returns the next index."""
    if i < len(argv) and (opt.arg != "optional" or not argv[i].startswith("-")):
        out.append(("opt", opt.name, argv[i]))
        return i + 1
    out.append(("opt", opt.name, None) if opt.arg == "optional" else ("noarg", word, None))
    return i


def _bundle(word: str, argv: Sequence[str], i: int, shorts: dict[str, Opt],
            out: list[Token]) -> int:
    """One ``-abc`` word (and a value word); returns the next index."""
    j = 1
    while j < len(word):
        ch = word[j]
        j += 1
        if ch in CMD_SHORT:
            out.append(("cmd", CMD_SHORT[ch], None))
            continue
        opt = shorts.get(ch)
        if opt is None:
            out.append(("bad", f"-{ch}", None))
            break
        if opt.arg == "none":
            out.append(("opt", opt.name, None))
            continue
        rest = word[j:]
        if rest:
            out.append(("opt", opt.name, rest))
        else:
            i = _value_word(opt, f"-{ch}", argv, i, out)
        break
    return i
