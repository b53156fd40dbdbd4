// The last few of something a request looks up by value (metric ids by their labels): a bounded
// list, most recent traffic first out, so a lookup miss only costs making the entry again.

export class Recent<T> {
  items: Array<T> = [];
  private next: i32 = 0;

  constructor(private size: i32) {}

  /** Keeps `item`, replacing the oldest when full; returns it. */
  add(item: T): T {
    const items = this.items;
    if (items.length < this.size) items.push(item);
    else {
      unchecked((items[this.next] = item));
      this.next = (this.next + 1) % this.size;
    }
    return item;
  }
}
