/** A tasks module that throws on import (issue 12 item 6 end-to-end test). */
throw new Error("tasks module failed on purpose: DATABASE_URL is not set");
