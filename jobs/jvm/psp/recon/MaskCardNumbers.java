package psp.recon;

import java.util.Arrays;

import org.apache.spark.sql.api.java.UDF1;

/**
 * Every card number in a string masked to first-6 / last-4 ("411111******1111"), as one JVM function
 * (registered as the SQL function {@code recon_mask_card_numbers} by {@code jobs.spark}).
 *
 * <p>A card number is any window of 13-19 ASCII digits, single spaces or dashes allowed between two
 * digits, that starts where a digit group starts (no digit before it), is not followed by a digit and
 * passes the Luhn (mod 10) check. Windows are taken longest first, then from left to right; each valid
 * window's text is replaced wherever it occurs, by its digits masked. So a card number that follows
 * another number after a space ("ref 7 4111 1111 ...") or is followed by one ("4111111111111111 12")
 * is found too. A value with more than 64 valid windows (no real field has that many; a damaged file
 * read as one record can) has each window's middle digits replaced by {@code *} in place instead, in
 * linear time.
 *
 * <p>Why a JVM function: the same search as Spark column expressions is seven regular expressions, a
 * 19-term Luhn expression and higher-order functions per column; over the ~14 string columns of an
 * event that generated methods too big for the JIT and task binaries of megabytes. This is one pass
 * over the characters, and none at all for a value with fewer than 13 digits (most values).
 * Compiled for Java 8, so it runs on every EMR, EMR Serverless and Glue runtime.
 */
public final class MaskCardNumbers implements UDF1<String, String> {
    private static final long serialVersionUID = 1L;
    static final int MIN_DIGITS = 13;
    static final int MAX_DIGITS = 19;
    /** More valid windows than this in one value: masked in place (see {@link #mask}). */
    static final int MAX_REPLACED_WINDOWS = 64;

    @Override
    public String call(String value) {
        return mask(value);
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }

    private static boolean isSeparator(char c) {
        return c == ' ' || c == '-';
    }

    /** The value with every card number in it masked; {@code null} stays {@code null}. */
    public static String mask(String value) {
        if (value == null) {
            return null;
        }
        final int len = value.length();
        int digits = 0;
        for (int i = 0; i < len && digits < MIN_DIGITS; i++) {
            if (isDigit(value.charAt(i))) {
                digits++;
            }
        }
        if (digits < MIN_DIGITS) {
            return value;                       // no window can exist
        }
        // ends[s][k-1]: index just past the k-th digit of the digit group starting at start s
        int[] starts = new int[16];
        int[][] ends = new int[16][];
        int[] reached = new int[16];
        int nStarts = 0;
        for (int i = 0; i < len; i++) {
            if (!isDigit(value.charAt(i)) || (i > 0 && isDigit(value.charAt(i - 1)))) {
                continue;
            }
            int[] e = new int[MAX_DIGITS];
            int k = 0;
            int pos = i;                        // index of the next digit to take
            while (k < MAX_DIGITS) {
                e[k++] = pos + 1;
                int next = pos + 1;
                if (next < len && isDigit(value.charAt(next))) {
                    pos = next;
                } else if (next + 1 < len && isSeparator(value.charAt(next)) && isDigit(value.charAt(next + 1))) {
                    pos = next + 1;
                } else {
                    break;
                }
            }
            if (k >= MIN_DIGITS) {
                if (nStarts == starts.length) {
                    starts = Arrays.copyOf(starts, nStarts * 2);
                    ends = Arrays.copyOf(ends, nStarts * 2);
                    reached = Arrays.copyOf(reached, nStarts * 2);
                }
                starts[nStarts] = i;
                ends[nStarts] = e;
                reached[nStarts] = k;
                nStarts++;
            }
        }
        // the valid windows, most digits first, then from left to right
        int[] validStart = new int[16];
        int[] validDigits = new int[16];
        int nValid = 0;
        for (int n = MAX_DIGITS; n >= MIN_DIGITS; n--) {
            for (int s = 0; s < nStarts; s++) {
                if (reached[s] < n) {
                    continue;
                }
                int end = ends[s][n - 1];
                if (end < len && isDigit(value.charAt(end))) {
                    continue;                   // followed by a digit: not a window of n digits
                }
                if (luhnValid(digitsOf(value.substring(starts[s], end)))) {
                    if (nValid == validStart.length) {
                        validStart = Arrays.copyOf(validStart, nValid * 2);
                        validDigits = Arrays.copyOf(validDigits, nValid * 2);
                    }
                    validStart[nValid] = s;
                    validDigits[nValid] = n;
                    nValid++;
                }
            }
        }
        if (nValid > MAX_REPLACED_WINDOWS) {
            // a value packed with card-number-like digit groups (a damaged file read as one record): each
            // window's middle digits masked where they stand, in one pass, instead of one search and
            // replace over the whole value per window (quadratic); separators are kept
            char[] out = value.toCharArray();
            for (int v = 0; v < nValid; v++) {
                int[] e = ends[validStart[v]];
                for (int k = 6; k < validDigits[v] - 4; k++) {
                    out[e[k] - 1] = '*';
                }
            }
            return new String(out);
        }
        String result = value;
        for (int v = 0; v < nValid; v++) {
            String window = value.substring(starts[validStart[v]], ends[validStart[v]][validDigits[v] - 1]);
            result = result.replace(window, masked(digitsOf(window)));
        }
        return result;
    }

    private static String digitsOf(String window) {
        StringBuilder b = new StringBuilder(window.length());
        for (int i = 0; i < window.length(); i++) {
            char c = window.charAt(i);
            if (isDigit(c)) {
                b.append(c);
            }
        }
        return b.toString();
    }

    static boolean luhnValid(String digits) {
        int total = 0;
        for (int i = 0; i < digits.length(); i++) {    // i = position from the right, 0 = check digit
            int d = digits.charAt(digits.length() - 1 - i) - '0';
            if (i % 2 == 1) {
                d = d * 2 > 9 ? d * 2 - 9 : d * 2;
            }
            total += d;
        }
        return total % 10 == 0;
    }

    static String masked(String digits) {
        int n = digits.length();
        StringBuilder b = new StringBuilder(n);
        b.append(digits, 0, 6);
        for (int i = 6; i < n - 4; i++) {
            b.append('*');
        }
        b.append(digits, n - 4, n);
        return b.toString();
    }
}
