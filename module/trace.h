/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cowbuf tracepoints: scan batches, merges and copy-on-write breaks.
 * Enable with: echo 1 > /sys/kernel/tracing/events/cowbuf/enable
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM cowbuf

#if !defined(_COWBUF_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _COWBUF_TRACE_H

#include <linux/tracepoint.h>

struct cowbuf_region;

TRACE_EVENT(cowbuf_scan_batch,
	TP_PROTO(unsigned long scanned, unsigned long merged,
		 unsigned long volatile_pages, unsigned long full_scans),
	TP_ARGS(scanned, merged, volatile_pages, full_scans),
	TP_STRUCT__entry(
		__field(unsigned long, scanned)
		__field(unsigned long, merged)
		__field(unsigned long, volatile_pages)
		__field(unsigned long, full_scans)
	),
	TP_fast_assign(
		__entry->scanned = scanned;
		__entry->merged = merged;
		__entry->volatile_pages = volatile_pages;
		__entry->full_scans = full_scans;
	),
	TP_printk("scanned=%lu merged=%lu volatile=%lu full_scans=%lu",
		  __entry->scanned, __entry->merged, __entry->volatile_pages,
		  __entry->full_scans)
);

TRACE_EVENT(cowbuf_merge,
	TP_PROTO(struct cowbuf_region *region, unsigned long pgoff,
		 const char *how),
	TP_ARGS(region, pgoff, how),
	TP_STRUCT__entry(
		__field(const void *, region)
		__field(unsigned long, pgoff)
		__string(how, how)
	),
	TP_fast_assign(
		__entry->region = region;
		__entry->pgoff = pgoff;
		__assign_str(how, how);
	),
	TP_printk("region=%p pgoff=%lu how=%s", __entry->region, __entry->pgoff,
		  __get_str(how))
);

TRACE_EVENT(cowbuf_cow_break,
	TP_PROTO(struct cowbuf_region *region, unsigned long pgoff),
	TP_ARGS(region, pgoff),
	TP_STRUCT__entry(
		__field(const void *, region)
		__field(unsigned long, pgoff)
	),
	TP_fast_assign(
		__entry->region = region;
		__entry->pgoff = pgoff;
	),
	TP_printk("region=%p pgoff=%lu", __entry->region, __entry->pgoff)
);

#endif /* _COWBUF_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
