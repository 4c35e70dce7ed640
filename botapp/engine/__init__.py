"""The generation engine: what the Celery tasks (`botapp.tasks`) run.

`botapp.services.generation.GenerationService` creates, charges, moves and refunds requests (every
status change is its conditional UPDATE); the engine takes a paid request from the queue to the
user's chat. Its modules:

    steps       run_generation / advance_generation: start, resume, submit, handle a poll, finish
    lease       the lease and alarm clock (`next_poll_at`): claims, alarms, due requests, poll delays
    timing      how long operations of a kind take, learned from the polls: dense polling around it
    poller      poll_generations: every due operation polled at once in a thread pool
    backends    which provider runs a request: Google (Gemini API or Vertex AI) or the offline demo
    inputs      the user's photos for the provider: downloaded from Telegram (or storage), checked
    results     results in Django storage (GENERATION_STORAGE_PREFIX); what fits Telegram's upload
                limit (a video re-encoded, else a signed link)
    variants    a request for several variants of an image: one provider call per variant, in
                rounds; only the pending ones are retried
    delivery    deliver_generation: a stored result reaches the chat once (send_started_at marks,
                OutcomeUnknown, the "result #N is ready" notice)
    albums      the variants as one album, then one message with what happened and the buttons;
                the partial refund of what the user did not get, once
    sending     one item to the chat: caption, photo / video / document / link, its marks
    failures    fail + refund, retries and backoff, ProviderError -> the user's message, notify_failure
    sweep       sweep_generations: nothing paid for stays stuck
    dispatch    the follow-up tasks the engine queues, by name (the engine never imports botapp.tasks)
    common      the clock, loading a request, the user's language, the status message

Life of a request (statuses are GenerationService's; every step is a conditional UPDATE, so duplicate
tasks, retries, the poller and the sweep never act twice):

    queued --start()--> running --submit--> (image) result ---------------------------+
                               \\--submit--> (video) operation id, next_poll_at         |
                                 poll_due() every tick: due operations polled at once  |
                                 in a thread pool; done -> result ---------------------+
    result: media stored (default_storage) -> mark_succeeded (XP) -> delivery.deliver():
            claim the delivery -> send photo/video/document -> mark_delivered (file_id kept);
            an upload whose answer is lost is never repeated (see botapp/engine/delivery.py)
    any failure: fail() refunds exactly once; the user is told why in their language.
    Stored error texts go through botapp.redaction (no token or key ever reaches the database).

`GenRequest.next_poll_at` is the request's lease and alarm clock:
- running: when the request is next due (a video poll, a retry after 429/5xx) or, while a worker is
  on it, when its claim expires. Whoever moves it (a conditional UPDATE from the value it read) owns
  the next step; a worker killed mid-step leaves a lease that expires, and the poller resumes it.
- succeeded: the delivery claim (NULL: free). A sender claims it before sending, so a duplicate
  delivery task sends nothing.

Retries (rate limits, 5xx, network) back off exponentially, or by Google's retry delay, and stop at
the request's deadline (`deadline_at`): then the request fails with the last error and is refunded.
"""
