// SPDX-License-Identifier: GPL-2.0
/*
 * cowbuf_pin, the merge stopper: stops cowbuf's scanner right after each
 * merge, until the test lets it go on (CBPIN_IOC_MERGE_STOP and the ioctls
 * after it), so that a test can act inside a scan chunk: between a slot's
 * merge and the end of its chunk, where a stale mapping of the slot's old
 * frame would be read.
 *
 * It hooks cowbuf's cowbuf_merge tracepoint, which the scanner reaches with
 * the frames of the merge unlocked but cowbuf_merge_mutex and the region's
 * map_lock (for read) held. A tracepoint probe must not sleep, so the
 * scanner busy-waits there, for CBPIN_STOP_MAX at most: a test must not call
 * what waits for the scanner's mutex (COWBUF_IOC_MERGE_INFO, the scanner's
 * knobs) while it is stopped, and a test that forgets it gets its scanner
 * back after CBPIN_STOP_MAX, seeing -ETIMEDOUT from the next call. Nor can
 * anything else run on the scanner's CPU meanwhile: a test keeps itself and
 * cowbufd on different CPUs (sched_setaffinity()), or the wake-up of its
 * CBPIN_IOC_MERGE_WAIT may leave it waiting on the scanner's CPU.
 *
 * The tracepoint is looked up with symbol_get() when the stopper is armed,
 * which holds a reference to cowbuf until it is disarmed: cowbuf_pin has no
 * link-time dependency on cowbuf, which can be unloaded and loaded again
 * while cowbuf_pin stays.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/string.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include "cbpin.h"
#include "cowbuf_pin.h"

/* How long the scanner waits at one merge before it goes on by itself. */
#define CBPIN_STOP_MAX	(10 * HZ)

/*
 * The stopper's state. stop_mutex serializes arming and disarming and
 * protects stop_owner and stop_tp; the scanner's side (stop_stopped,
 * stop_go, stop_pgoff, stop_how) is protected by stop_lock, which the probe
 * takes in atomic context. There is one stopper: one scanner.
 */
static DEFINE_MUTEX(stop_mutex);
static struct file *stop_owner;
static struct tracepoint *stop_tp;

static DEFINE_SPINLOCK(stop_lock);
static DECLARE_WAIT_QUEUE_HEAD(stop_wq);
static bool stop_armed;
static bool stop_stopped;
static bool stop_go;
static bool stop_timed_out;
static unsigned long stop_pgoff;
static __u32 stop_how;

static __u32 how_code(const char *how)
{
	if (!strcmp(how, "zero"))
		return CBPIN_MERGE_ZERO;
	if (!strcmp(how, "unstable"))
		return CBPIN_MERGE_UNSTABLE;
	return CBPIN_MERGE_STABLE;
}

/* The scanner merged the slot @pgoff: wait there until let go. */
static void merge_stop_probe(void *data, struct cowbuf_region *region,
			     unsigned long pgoff, const char *how)
{
	unsigned long deadline = jiffies + CBPIN_STOP_MAX;
	bool go;

	spin_lock(&stop_lock);
	if (!stop_armed) {
		spin_unlock(&stop_lock);
		return;
	}
	stop_stopped = true;
	stop_go = false;
	stop_pgoff = pgoff;
	stop_how = how_code(how);
	spin_unlock(&stop_lock);
	wake_up_all(&stop_wq);

	do {
		cpu_relax();
		go = READ_ONCE(stop_go) || !READ_ONCE(stop_armed);
	} while (!go && time_before(jiffies, deadline));

	spin_lock(&stop_lock);
	if (!go)
		stop_timed_out = true;
	stop_stopped = false;
	spin_unlock(&stop_lock);
}

/**
 * cbpin_merge_stop() - CBPIN_IOC_MERGE_STOP: arm the stopper for @file
 * @file: the file arming it
 *
 * Return: 0, -EBUSY if it is armed already, -ENOENT if cowbuf is not loaded.
 */
long cbpin_merge_stop(struct file *file)
{
	struct tracepoint *tp;
	int ret;

	mutex_lock(&stop_mutex);
	if (stop_owner) {
		ret = -EBUSY;
		goto out_unlock;
	}
	tp = symbol_get(__tracepoint_cowbuf_merge);
	if (!tp) {
		ret = -ENOENT;
		goto out_unlock;
	}
	spin_lock(&stop_lock);
	stop_armed = true;
	stop_stopped = false;
	stop_go = false;
	stop_timed_out = false;
	spin_unlock(&stop_lock);
	ret = tracepoint_probe_register(tp, merge_stop_probe, NULL);
	if (ret) {
		WRITE_ONCE(stop_armed, false);
		goto out_put_symbol;
	}
	stop_tp = tp;
	stop_owner = file;
	mutex_unlock(&stop_mutex);
	return 0;

out_put_symbol:
	symbol_put(__tracepoint_cowbuf_merge);
out_unlock:
	mutex_unlock(&stop_mutex);
	return ret;
}

/**
 * cbpin_merge_wait() - CBPIN_IOC_MERGE_WAIT: wait for the scanner to stop
 * @file: the file that armed the stopper
 * @uarg: struct cowbuf_pin_merge_stop
 *
 * Return: 0 with the merge in @uarg, -EINVAL if @file did not arm the
 * stopper, -ETIMEDOUT if the scanner did not stop within the timeout or
 * went on by itself since the last call, -EINTR on a signal.
 */
long cbpin_merge_wait(struct file *file, void __user *uarg)
{
	struct cowbuf_pin_merge_stop stop;
	long left;

	if (copy_from_user(&stop, uarg, sizeof(stop)))
		return -EFAULT;
	if (stop.pad || stop.pad2 || stop.timeout_ms > 60000)
		return -EINVAL;
	if (READ_ONCE(stop_owner) != file)
		return -EINVAL;
	left = wait_event_interruptible_timeout(stop_wq,
						READ_ONCE(stop_stopped) && !READ_ONCE(stop_go),
						msecs_to_jiffies(stop.timeout_ms));
	if (left < 0)
		return left;
	spin_lock(&stop_lock);
	if (!left || stop_timed_out || !stop_stopped || stop_go) {
		spin_unlock(&stop_lock);
		return -ETIMEDOUT;
	}
	stop.pgoff = stop_pgoff;
	stop.how = stop_how;
	spin_unlock(&stop_lock);
	return copy_to_user(uarg, &stop, sizeof(stop)) ? -EFAULT : 0;
}

/**
 * cbpin_merge_go() - CBPIN_IOC_MERGE_GO: let the stopped scanner go on, to
 *	its next merge
 * @file: the file that armed the stopper
 *
 * Return: 0, -EINVAL if @file did not arm the stopper or the scanner is not
 * stopped, -ETIMEDOUT if it went on by itself.
 */
long cbpin_merge_go(struct file *file)
{
	long ret = 0;

	if (READ_ONCE(stop_owner) != file)
		return -EINVAL;
	spin_lock(&stop_lock);
	if (stop_timed_out)
		ret = -ETIMEDOUT;
	else if (!stop_stopped || stop_go)
		ret = -EINVAL;
	else
		stop_go = true;
	spin_unlock(&stop_lock);
	return ret;
}

/**
 * cbpin_merge_end() - CBPIN_IOC_MERGE_END, or close: disarm the stopper
 * @file: the file that armed it
 *
 * The scanner goes on; the tracepoint's probe is gone when this returns.
 *
 * Return: 0, -ETIMEDOUT if the scanner went on by itself meanwhile, or
 * -EINVAL if @file did not arm the stopper.
 */
long cbpin_merge_end(struct file *file)
{
	long ret = 0;

	mutex_lock(&stop_mutex);
	if (stop_owner != file) {
		mutex_unlock(&stop_mutex);
		return -EINVAL;
	}
	spin_lock(&stop_lock);
	stop_armed = false;
	if (stop_timed_out)
		ret = -ETIMEDOUT;
	spin_unlock(&stop_lock);
	WARN_ON(tracepoint_probe_unregister(stop_tp, merge_stop_probe, NULL));
	tracepoint_synchronize_unregister();
	symbol_put(__tracepoint_cowbuf_merge);
	stop_tp = NULL;
	stop_owner = NULL;
	mutex_unlock(&stop_mutex);
	return ret;
}
