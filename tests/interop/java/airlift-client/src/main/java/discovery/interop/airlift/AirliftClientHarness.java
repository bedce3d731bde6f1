//! Command-line driver of the real airlift discovery client (airlift 336, as in Trino
//! 476) for the Rust interop tests in tests/interop/airlift_client.rs.
//!
//! The client is wired by airlift's own Bootstrap, NodeModule, JsonModule and
//! DiscoveryModule, exactly as an airlift server wires it; the only change is that the
//! announcement and lookup clients are wrapped by observers that print what happened.
//! Usage:
//!
//!   AirliftClientHarness [--set key=value]... announce TYPE [property=value]...
//!   AirliftClientHarness [--set key=value]... lookup TYPE POOL
//!   AirliftClientHarness [--set key=value]... selector TYPE POOL
//!
//! `--set` gives airlift configuration (node.environment, node.id, discovery.uri,
//! service-inventory.uri, ...). Every command prints JSON lines on stdout and runs until
//! stdin says `stop` or closes; then the lifecycle is stopped the way a Trino shutdown
//! stops it, which calls Announcer.destroy() and so sends the DELETE. `lookup` also
//! reads `get` (a first lookup, no ETag) and `refresh` (a lookup with the previous
//! answer, hence its ETag) from stdin and answers each with a `reply` line.
package discovery.interop.airlift;

import com.google.inject.Injector;
import com.google.inject.Key;
import com.google.inject.Module;
import com.google.inject.Scopes;
import com.google.inject.util.Modules;
import io.airlift.bootstrap.Bootstrap;
import io.airlift.bootstrap.LifeCycleManager;
import io.airlift.discovery.client.Announcer;
import io.airlift.discovery.client.DiscoveryAnnouncementClient;
import io.airlift.discovery.client.DiscoveryLookupClient;
import io.airlift.discovery.client.DiscoveryModule;
import io.airlift.discovery.client.HttpDiscoveryAnnouncementClient;
import io.airlift.discovery.client.HttpDiscoveryLookupClient;
import io.airlift.discovery.client.ServiceAnnouncement;
import io.airlift.discovery.client.ServiceDescriptor;
import io.airlift.discovery.client.ServiceDescriptors;
import io.airlift.discovery.client.ServiceSelector;
import io.airlift.json.JsonModule;
import io.airlift.node.NodeInfo;
import io.airlift.node.NodeModule;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static io.airlift.discovery.client.DiscoveryBinder.discoveryBinder;
import static io.airlift.discovery.client.ServiceAnnouncement.serviceAnnouncement;
import static io.airlift.discovery.client.ServiceTypes.serviceType;

public final class AirliftClientHarness
{
    private AirliftClientHarness() {}

    public static void main(String[] args)
            throws Exception
    {
        Out.claimStdout();
        Map<String, String> config = new LinkedHashMap<>();
        List<String> rest = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--set") && i + 1 < args.length) {
                String[] pair = splitPair(args[++i]);
                config.put(pair[0], pair[1]);
            }
            else {
                rest.add(args[i]);
            }
        }
        if (rest.isEmpty()) {
            usage("no command");
        }
        String command = rest.get(0);
        List<String> operands = rest.subList(1, rest.size());
        int status = switch (command) {
            case "announce" -> announce(config, operands);
            case "lookup" -> lookup(config, operands);
            case "selector" -> selector(config, operands);
            default -> usage("unknown command " + command);
        };
        // Daemon threads of the client must not keep a finished harness alive.
        System.exit(status);
    }

    /** `announce TYPE [k=v]...`: the real Announcer, started as Trino starts it. */
    private static int announce(Map<String, String> config, List<String> operands)
            throws Exception
    {
        if (operands.isEmpty()) {
            return usage("announce needs a service type");
        }
        Map<String, String> properties = new LinkedHashMap<>();
        for (String operand : operands.subList(1, operands.size())) {
            String[] pair = splitPair(operand);
            properties.put(pair[0], pair[1]);
        }
        ServiceAnnouncement announcement = serviceAnnouncement(operands.get(0)).addProperties(properties).build();
        Injector injector = bootstrap(config, binder -> discoveryBinder(binder).bindServiceAnnouncement(announcement));
        if (injector == null) {
            return 2;
        }
        NodeInfo nodeInfo = injector.getInstance(NodeInfo.class);
        Announcer announcer = injector.getInstance(Announcer.class);
        // start() sends the first PUT and waits (at most 30 s) for it, then keeps going.
        // A discovery URI the HTTP client cannot use throws from here, as it would
        // abort a Trino start.
        try {
            announcer.start();
        }
        catch (RuntimeException e) {
            Out.event("error", "stage", "start", "error", Out.describe(e));
            return 1;
        }
        Out.event("started", "nodeId", nodeInfo.getNodeId(), "serviceId", announcement.getId().toString());
        waitForStop(null);
        return shutdown(injector);
    }

    /** `lookup TYPE POOL`: single lookups through the real HttpDiscoveryLookupClient. */
    private static int lookup(Map<String, String> config, List<String> operands)
            throws Exception
    {
        if (operands.size() != 2) {
            return usage("lookup needs TYPE POOL");
        }
        String type = operands.get(0);
        String pool = operands.get(1);
        Injector injector = bootstrap(config, binder -> {});
        if (injector == null) {
            return 2;
        }
        DiscoveryLookupClient client = injector.getInstance(DiscoveryLookupClient.class);
        Out.event("started");
        ServiceDescriptors[] last = new ServiceDescriptors[1];
        waitForStop(line -> {
            try {
                switch (line) {
                    case "get" -> last[0] = client.getServices(type, pool).get(30, TimeUnit.SECONDS);
                    case "refresh" -> {
                        if (last[0] == null) {
                            Out.event("reply", "to", line, "ok", false, "error", "no previous lookup to refresh");
                            return;
                        }
                        last[0] = client.refreshServices(last[0]).get(30, TimeUnit.SECONDS);
                    }
                    default -> {
                        Out.event("reply", "to", line, "ok", false, "error", "unknown lookup command");
                        return;
                    }
                }
                Out.event("reply", "to", line, "ok", true);
            }
            catch (Exception e) {
                // The observer has already printed the lookup's failure.
                Out.event("reply", "to", line, "ok", false, "error", Out.describe(e));
            }
        });
        return shutdown(injector);
    }

    /**
     * `selector TYPE POOL`: a selector bound as Trino binds its own (DiscoveryBinder, so a
     * CachingServiceSelector behind a MergingServiceSelector, refreshing on its own
     * schedule). Prints the list whenever what callers would see changes.
     */
    private static int selector(Map<String, String> config, List<String> operands)
            throws Exception
    {
        if (operands.size() != 2) {
            return usage("selector needs TYPE POOL");
        }
        String type = operands.get(0);
        Map<String, String> withPool = new LinkedHashMap<>(config);
        withPool.put("discovery." + type + ".pool", operands.get(1));
        Injector injector = bootstrap(withPool, binder -> discoveryBinder(binder).bindSelector(type));
        if (injector == null) {
            return 2;
        }
        ServiceSelector selector = injector.getInstance(Key.get(ServiceSelector.class, serviceType(type)));
        Out.event("started");
        CountDownLatch stop = new CountDownLatch(1);
        Thread input = new Thread(() -> {
            waitForStop(null);
            stop.countDown();
        }, "harness-stdin");
        input.setDaemon(true);
        input.start();
        List<ServiceDescriptor> shown = null;
        // Polling the cached list is what Trino's node manager does; it costs no I/O.
        do {
            List<ServiceDescriptor> now = selector.selectAllServices();
            if (!now.equals(shown)) {
                shown = now;
                Out.event("services", "services", now);
            }
        }
        while (!stop.await(20, TimeUnit.MILLISECONDS));
        return shutdown(injector);
    }

    /** airlift's own wiring, with the two HTTP clients wrapped by their observers. */
    private static Injector bootstrap(Map<String, String> config, Module extra)
    {
        Module observed = binder -> {
            // Bootstrap requires explicit bindings, and the override below removes the
            // links DiscoveryModule makes to these two classes.
            binder.bind(HttpDiscoveryAnnouncementClient.class).in(Scopes.SINGLETON);
            binder.bind(HttpDiscoveryLookupClient.class).in(Scopes.SINGLETON);
            binder.bind(DiscoveryAnnouncementClient.class).to(ObservingAnnouncementClient.class).in(Scopes.SINGLETON);
            binder.bind(DiscoveryLookupClient.class).to(ObservingLookupClient.class).in(Scopes.SINGLETON);
            binder.bind(ObservingAnnouncementClient.class).in(Scopes.SINGLETON);
            binder.bind(ObservingLookupClient.class).in(Scopes.SINGLETON);
        };
        Bootstrap app = new Bootstrap(
                new NodeModule(),
                new JsonModule(),
                Modules.override(new DiscoveryModule()).with(observed),
                extra);
        try {
            // Logging stays uninitialised: airlift would otherwise take over stdout.
            return app.doNotInitializeLogging()
                    .setRequiredConfigurationProperties(config)
                    .initialize();
        }
        catch (Exception e) {
            Out.event("error", "stage", "bootstrap", "error", Out.describe(e));
            return null;
        }
    }

    /** Stops the lifecycle as a Trino shutdown does: Announcer.destroy() unannounces. */
    private static int shutdown(Injector injector)
    {
        try {
            injector.getInstance(LifeCycleManager.class).stop();
            Out.event("stopped");
            return 0;
        }
        catch (Exception e) {
            Out.event("error", "stage", "shutdown", "error", Out.describe(e));
            return 1;
        }
    }

    /** Reads stdin until `stop` or its end, handing every other line to `commands`. */
    private static void waitForStop(java.util.function.Consumer<String> commands)
    {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                line = line.strip();
                if (line.equals("stop")) {
                    return;
                }
                if (!line.isEmpty() && commands != null) {
                    commands.accept(line);
                }
            }
        }
        catch (IOException e) {
            Out.event("error", "stage", "stdin", "error", Out.describe(e));
        }
    }

    private static String[] splitPair(String pair)
    {
        int equals = pair.indexOf('=');
        if (equals <= 0) {
            usage("expected key=value, got " + pair);
        }
        return new String[] {pair.substring(0, equals), pair.substring(equals + 1)};
    }

    private static int usage(String why)
    {
        Out.event("error", "stage", "usage", "error", why);
        System.exit(2);
        return 2;
    }
}
