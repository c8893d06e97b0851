from prometheus_client import Counter, Gauge

CHATS_RUNNING = Gauge("cozeplus_runner_chats_running", "Chats this runner is running now")
CHATS_TOTAL = Counter(
    "cozeplus_runner_chats_total", "Chats this runner took off the queue", ["outcome"]
)
