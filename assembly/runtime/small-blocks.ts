// Free lists of small blocks in front of the runtime's TLSF allocator (the build puts this file
// into AssemblyScript's standard library as ~lib/rt/small-blocks and points the minimal runtime's
// object allocation and sweep at it: scripts/asc-runtime.mjs).
//
// Why: a filter's garbage is mostly small objects (parse values, strings, result records) that
// live for one request; the collector frees them in bulk after a few streams, and the next
// requests ask for the same sizes again. TLSF pays for each of them twice: a search, a removal and
// a split (with an insertion of the rest) to hand one out, an insertion with merges to take it
// back. That was about a fifth of the time in wasm of a translated request. Here a freed small
// block goes onto a list of its exact size and the next request of that size takes it back: a few
// loads and stores each way.
//
// Memory: wasm memory never shrinks, and where an object is placed decides whether a large buffer
// (a body's) later finds a run of free memory or makes memory grow. TLSF fills small holes first and
// keeps large runs whole; a listed block is not merged with its neighbours, and an object put in
// one may sit where TLSF would have left a run. So the lists are kept from costing memory:
//  - TLSF, before it grows memory for a request it has no room for, takes every listed block back
//    (__free_small_all) and looks again;
//  - each collection starts with the lists given back, so they hold only what its sweep frees;
//  - they hold at most a quarter of memory (a translated 2 KB request gained 10 % from an eighth
//    to a quarter, nothing more at a half, where key-auth's memory doubled under a hostile body:
//    test/hostile-body.test.ts);
//  - when a cycle's objects (garbage included) reached over half of memory, the next cycle does
//    not list at all: a full heap is where placement decides;
//  - a VM whose memory has grown past SMALL_HEAP_PAGES (1 MiB) has held large bodies, and lists no
//    more: under the soak's 256 KB prompts (scripts/bench/soak.ts) ai-proxy's memory doubled, 96 to
//    192 pages, in five soaks of six with the lists on at any size; 96 in every soak without them,
//    and with this rule.
// A block freed beyond these goes straight back to TLSF. To TLSF a listed block is still in use, so
// its neighbours' tags stay right and nothing else in TLSF changes.
import { AL_MASK, BLOCK_OVERHEAD } from "./common";

/** Largest block size (without its header) kept on a list: objects, small strings and arrays. */
// @ts-ignore: decorator
@inline const SMALL_MAX: usize = 512 - BLOCK_OVERHEAD;
/** Memory up to which a VM lists at all: past it, it has held large bodies. */
// @ts-ignore: decorator
@inline const SMALL_HEAP_PAGES: i32 = 16;
// @ts-ignore: decorator
@inline const TAGS: usize = 3; // TLSF's FREE and LEFTFREE bits in a block's size word
// @ts-ignore: decorator
@inline const SIZES: usize = (SMALL_MAX + BLOCK_OVERHEAD) >> 4;

/**
 * A list per size class ((block size + header) / 16): its first and last block, two words; a
 * listed block's first word is the next one. First in, first out: a sweep frees blocks in the
 * order they were made, so the oldest (lowest) are handed out first, and the newest, next to the
 * free memory above them, last. Handing out the newest first put live objects just between the
 * freed run and that free memory, and a large buffer that TLSF alone fitted there doubled memory.
 */
// @ts-ignore: decorator
@lazy const lists: usize = memory.data(<i32>((SIZES + 1) << (alignof<usize>() + 1)));
// @ts-ignore: decorator
@lazy let cachedBytes: usize = 0;
/** Whether freed blocks go onto the lists this cycle (see __small_blocks_cycle). */
// @ts-ignore: decorator
@lazy let listing: bool = true;

/** The list of size class c: two words at lists + 16c on 64-bit, 8c on 32-bit. */
// @ts-ignore: decorator
@inline function listOf(c: usize): usize {
  return lists + (c << (alignof<usize>() + 1));
}

/** The size class of a block of s bytes (header excluded). */
// @ts-ignore: decorator
@inline function sizeClass(s: usize): usize {
  return (s + BLOCK_OVERHEAD) >> 4;
}

/** The size TLSF gives a block for `size` bytes (as its computeSize: aligned, header excluded). */
// @ts-ignore: decorator
@inline function blockSize(size: usize): usize {
  const s = ((size + BLOCK_OVERHEAD + AL_MASK) & ~AL_MASK) - BLOCK_OVERHEAD;
  const min: usize = ((3 * sizeof<usize>() + BLOCK_OVERHEAD + AL_MASK) & ~AL_MASK) - BLOCK_OVERHEAD;
  return s < min ? min : s;
}

/** A block of at least `size` bytes: a listed one of that exact size, else one from TLSF. */
// @ts-ignore: decorator
@global @unsafe
export function __alloc_small(size: usize): usize {
  const s = blockSize(size);
  if (s <= SMALL_MAX) {
    const list = listOf(sizeClass(s));
    const ptr = load<usize>(list);
    if (ptr != 0) {
      store<usize>(list, load<usize>(ptr));
      cachedBytes -= s;
      return ptr;
    }
  }
  return __alloc(size);
}

/** Takes a block back: onto its size's list while the lists have room, else to TLSF. */
// @ts-ignore: decorator
@global @unsafe
export function __free_small(ptr: usize): void {
  const s = load<usize>(ptr - BLOCK_OVERHEAD) & ~TAGS;
  if (s <= SMALL_MAX && listing && cachedBytes + s <= (<usize>memory.size() << 14)) {
    const list = listOf(sizeClass(s));
    store<usize>(ptr, 0);
    if (load<usize>(list) == 0) store<usize>(list, ptr);
    else store<usize>(load<usize>(list, sizeof<usize>()), ptr);
    store<usize>(list, ptr, sizeof<usize>());
    cachedBytes += s;
    return;
  }
  __free(ptr);
}

/** Gives every listed block back to TLSF (which merges it with free neighbours); false if none. */
// @ts-ignore: decorator
@global @unsafe
export function __free_small_all(): bool {
  if (cachedBytes == 0) return false;
  for (let c: usize = 0; c <= SIZES; c++) {
    const list = listOf(c);
    let ptr = load<usize>(list);
    while (ptr != 0) {
      const next = load<usize>(ptr);
      __free(ptr);
      ptr = next;
    }
    store<usize>(list, 0);
    store<usize>(list, 0, sizeof<usize>());
  }
  cachedBytes = 0;
  return true;
}

/**
 * At the start of a collection, with the bytes in objects at their peak (the garbage included):
 * gives the listed blocks back, so the lists hold only what this sweep frees; and turns the lists
 * off for the next cycle when that peak was over half of memory, or when memory is past
 * SMALL_HEAP_PAGES (memory that grew is collected at once, so this follows growth). A full heap is
 * where placement matters: TLSF fills the small holes first and keeps large runs whole, and a
 * listed block handed out where TLSF would not have put its object can cost the run a large buffer
 * needs, and a doubling of memory (identity's test of 60 KB claims and 3,000 groups did).
 */
// @ts-ignore: decorator
@global @unsafe
export function __small_blocks_cycle(peakBytes: usize): void {
  __free_small_all();
  listing = memory.size() <= SMALL_HEAP_PAGES && peakBytes <= (<usize>memory.size() << 15);
}
