// A budget of bytes shared by concurrent requests: taken before a request body is read,
// given back when its response is done. Refusing at the door (a 503 before any byte of the
// body is buffered) is what keeps 200 concurrent 10 MiB uploads from costing 2 GB.
export class ByteBudget {
  private used = 0

  constructor (readonly capacity: number) {}

  get inUse (): number {
    return this.used
  }

  /** Take `bytes` if they fit; false (nothing taken) otherwise. */
  tryTake (bytes: number): boolean {
    if (this.used + bytes > this.capacity) return false
    this.used += bytes
    return true
  }

  give (bytes: number): void {
    this.used = Math.max(0, this.used - bytes)
  }
}
