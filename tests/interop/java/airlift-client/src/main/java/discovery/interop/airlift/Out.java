//! Machine-readable output of the harness: one JSON object per line on the real stdout.
//! The Rust tests parse these lines, so nothing else may reach stdout; airlift's own
//! logging goes to stderr.
package discovery.interop.airlift;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.common.util.concurrent.FutureCallback;
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.SettableFuture;
import io.airlift.json.ObjectMapperProvider;

import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

import static com.google.common.util.concurrent.MoreExecutors.directExecutor;

final class Out
{
    private static final ObjectMapper MAPPER = new ObjectMapperProvider().get();
    // Monotonic origin, so the tests can measure refresh intervals as the client saw them.
    private static final long START = System.nanoTime();
    private static PrintStream stdout = System.out;

    private Out() {}

    /** Keeps the real stdout for events and sends anything else printed to stderr. */
    static void claimStdout()
    {
        stdout = System.out;
        System.setOut(System.err);
    }

    /** Prints `{"event": name, "ms": ..., key: value, ...}`; `fields` alternates keys and values. */
    static void event(String name, Object... fields)
    {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("event", name);
        line.put("ms", (System.nanoTime() - START) / 1_000_000);
        for (int i = 0; i + 1 < fields.length; i += 2) {
            line.put(String.valueOf(fields[i]), fields[i + 1]);
        }
        String text;
        try {
            text = MAPPER.writeValueAsString(line);
        }
        catch (Exception e) {
            throw new UncheckedIOException(new java.io.IOException("cannot render " + line, e));
        }
        synchronized (Out.class) {
            stdout.println(text);
            stdout.flush();
        }
    }

    /** The message of `t` and of its causes, which is where airlift puts the real reason. */
    static String describe(Throwable t)
    {
        StringBuilder message = new StringBuilder();
        for (Throwable cause = t; cause != null; cause = cause.getCause()) {
            if (!message.isEmpty()) {
                message.append(" <- ");
            }
            message.append(cause.getClass().getSimpleName()).append(": ").append(cause.getMessage());
        }
        return message.toString();
    }

    /**
     * `future`, completed only after `onSuccess` or `onFailure` has printed its event, so
     * whoever waits on the result (the harness's `reply`, airlift's own callbacks) comes
     * after the event on stdout.
     */
    static <T> ListenableFuture<T> reportThen(ListenableFuture<T> future, Consumer<T> onSuccess, Consumer<Throwable> onFailure)
    {
        SettableFuture<T> reported = SettableFuture.create();
        Futures.addCallback(future, new FutureCallback<T>()
        {
            @Override
            public void onSuccess(T result)
            {
                try {
                    onSuccess.accept(result);
                }
                finally {
                    reported.set(result);
                }
            }

            @Override
            public void onFailure(Throwable t)
            {
                try {
                    onFailure.accept(t);
                }
                finally {
                    reported.setException(t);
                }
            }
        }, directExecutor());
        return reported;
    }
}
